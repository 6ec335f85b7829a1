namespace IserBlockd.Daemon.Configuration;

/// <summary>One problem in the configuration file, at a JSON path such as <c>nodes[1].luns[0].device</c>.</summary>
public readonly record struct ConfigError(string Path, string Message)
{
    public override string ToString() => Path.Length == 0 ? Message : $"{Path}: {Message}";
}
