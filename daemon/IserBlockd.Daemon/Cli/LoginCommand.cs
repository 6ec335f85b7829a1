using System.CommandLine;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary><c>iserblockctl login NODE</c>: the daemon logs in to a configured node now and brings its mappings up.</summary>
public static class LoginCommand
{
    public static Command Create(CtlContext context)
    {
        var node = ControlCommandSupport.NodeArgument();
        var control = new ControlCommandSupport();
        var command = new Command("login", "Log in to a configured node now (and map its LUNs)") { node };
        control.AddTo(command);
        command.SetAction((result, cancellationToken) => context.RunAsync(result, control.Output, (_, stdout) =>
            control.SendAsync(result, stdout, new ControlSocketRequest { Command = "login", Node = result.GetValue(node) },
                ControlCommandSupport.RenderMessage, cancellationToken)));
        return command;
    }
}
