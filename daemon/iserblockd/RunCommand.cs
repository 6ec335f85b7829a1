using System.CommandLine;
using IserBlockd.Daemon.Cli;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Hosting;
using IserBlockd.Daemon.Identity;

namespace IserBlockd.Cli;

/// <summary><c>iserblockd run [--config FILE]</c>: the daemon (what the systemd unit starts).</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var command = new Command("run", "Run the daemon: log in to every configured node and map its LUNs, until SIGTERM") { config };
        command.SetAction(async (result, _) =>
        {
            var path = result.GetValue(config)!;
            DaemonSettings settings;
            try
            {
                settings = ConfigLoader.Load(path);
            }
            catch (ConfigException e)
            {
                ConfigErrorReport.Write(e);
                return ExitCodes.Config;
            }
            string initiatorName;
            try
            {
                initiatorName = settings.InitiatorName ?? new InitiatorIdentity().Resolve().Name;
            }
            catch (InvalidOperationException e)
            {
                ConfigErrorReport.Write(new ConfigException(path, [new ConfigError("initiatorName", $"not set, and {e.Message}")]));
                return ExitCodes.Config;
            }
            return await DaemonHost.RunAsync(settings, path, initiatorName, Console.Error);
        });
        return command;
    }
}
