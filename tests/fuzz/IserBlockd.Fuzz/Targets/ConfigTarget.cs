using IserBlockd.Daemon.Configuration;

namespace IserBlockd.Fuzz.Targets;

/// <summary>The configuration file: JSON syntax, the schema check and the validator, as `iserblockd check-config` runs them.</summary>
public sealed class ConfigTarget : IFuzzTarget
{
    public string Name => "config";

    public IReadOnlyList<string> Instrumented => ["IserBlockd.Daemon.dll"];

    public void Run(ReadOnlySpan<byte> input)
    {
        try
        {
            _ = ConfigLoader.Parse(input.ToArray(), "fuzz.json");
        }
        catch (ConfigException e)
        {
            _ = e.Message;
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        // Shaped like systemd/iserblockd.example.json and the Daemon tests' configurations.
        yield return ("minimal", """{"nodes":[{"name":"disk","portal":"127.0.0.1:3260","target":"iqn.2026-11.io.example:disk","luns":[{"lun":0,"nbd":{"socket":"/run/x.sock"}}]}]}"""u8.ToArray());
        var example = Path.Combine(AppContext.BaseDirectory, "seeds", "iserblockd.example.json");
        if (File.Exists(example)) yield return ("example", File.ReadAllBytes(example));
    }
}
