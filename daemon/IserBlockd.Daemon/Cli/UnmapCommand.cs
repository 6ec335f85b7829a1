using System.CommandLine;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary><c>iserblockctl unmap NODE LUN</c>: withdraw a LUN's exports and device after a flush.</summary>
public static class UnmapCommand
{
    public static Command Create(CtlContext context)
    {
        var node = ControlCommandSupport.NodeArgument();
        var lun = ControlCommandSupport.LunArgument();
        var control = new ControlCommandSupport();
        var command = new Command("unmap", "Withdraw a LUN's exports and kernel device (after a flush); refused while the device is in use") { node, lun };
        control.AddTo(command);
        command.SetAction((result, cancellationToken) => context.RunAsync(result, control.Output, (_, stdout) =>
            control.SendAsync(result, stdout, new ControlSocketRequest { Command = "unmap", Node = result.GetValue(node), Lun = result.GetValue(lun) },
                ControlCommandSupport.RenderMessage, cancellationToken)));
        return command;
    }
}
