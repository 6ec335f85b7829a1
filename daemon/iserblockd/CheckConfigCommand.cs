using System.CommandLine;
using IserBlockd.Daemon.Cli;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Hosting;

namespace IserBlockd.Cli;

/// <summary><c>iserblockd check-config [--config FILE]</c>: validates the file (secret files included) and
/// prints the effective configuration with every default filled in, secrets left out.</summary>
internal static class CheckConfigCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var command = new Command("check-config", "Check the configuration file and print it with every default filled in") { config };
        command.SetAction(result =>
        {
            var path = result.GetValue(config)!;
            try
            {
                var settings = ConfigLoader.Load(path);
                Console.Out.WriteLine(ConfigDump.ToJson(settings));
                Console.Error.WriteLine($"iserblockd: {path}: OK ({settings.Nodes.Count} node(s), {settings.Nodes.Sum(n => n.Luns.Count)} LUN mapping(s))");
                return ExitCodes.Ok;
            }
            catch (ConfigException e)
            {
                ConfigErrorReport.Write(e);
                return ExitCodes.Config;
            }
        });
        return command;
    }
}
