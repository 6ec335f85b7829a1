using System.CommandLine;
using IserBlockd.Daemon.Configuration;

namespace IserBlockd.Cli;

internal static class CommonOptions
{
    public static Option<string> Config() => new("--config", "-c")
    {
        Description = $"Configuration file (default {DaemonSettings.DefaultConfigPath})",
        DefaultValueFactory = _ => DaemonSettings.DefaultConfigPath,
        HelpName = "FILE",
    };
}
