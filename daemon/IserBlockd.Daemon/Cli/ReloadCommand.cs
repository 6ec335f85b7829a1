using System.CommandLine;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary><c>iserblockctl reload</c>: the daemon reads its configuration file again and applies the difference (as SIGHUP);
/// a file that does not validate changes nothing, and the reason is printed.</summary>
public static class ReloadCommand
{
    public static Command Create(CtlContext context) =>
        ControlCommandSupport.Create(context, "reload", "Re-read the daemon's configuration file and apply what changed (as systemctl reload)", [],
            _ => new ControlSocketRequest { Command = "reload" });
}
