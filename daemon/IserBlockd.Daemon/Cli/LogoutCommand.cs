using System.CommandLine;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary><c>iserblockctl logout NODE</c>: unmap the node's LUNs (flush, detach), then log out.</summary>
public static class LogoutCommand
{
    public static Command Create(CtlContext context)
    {
        var node = ControlCommandSupport.NodeArgument();
        var control = new ControlCommandSupport();
        var command = new Command("logout", "Unmap a node's LUNs (flushed, detached) and log out; refused while a device is in use") { node };
        control.AddTo(command);
        command.SetAction((result, cancellationToken) => context.RunAsync(result, control.Output, (_, stdout) =>
            control.SendAsync(result, stdout, new ControlSocketRequest { Command = "logout", Node = result.GetValue(node) },
                ControlCommandSupport.RenderMessage, cancellationToken)));
        return command;
    }
}
