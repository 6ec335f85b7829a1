using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Logging;

namespace IserBlockd.Cli;

/// <summary>Prints a configuration error before any logger exists: on stderr, and with a journald
/// priority prefix on every line when stderr is the journal.</summary>
internal static class ConfigErrorReport
{
    public static void Write(ConfigException e)
    {
        var prefix = LogConsoleDetection.Detect() == LogConsoleKind.Journal ? "<3>" : "";
        foreach (var line in ("iserblockd: " + e.Message).Split('\n'))
            Console.Error.WriteLine(prefix + line);
    }
}
