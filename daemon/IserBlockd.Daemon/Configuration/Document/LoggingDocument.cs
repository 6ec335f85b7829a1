namespace IserBlockd.Daemon.Configuration.Document;

public sealed class LoggingDocument
{
    public string? Level { get; set; }
    /// <summary>Minimum level per component: a namespace prefix such as "IserBlockd.Iscsi".</summary>
    public Dictionary<string, string?>? Components { get; set; }
    public string? File { get; set; }
}
