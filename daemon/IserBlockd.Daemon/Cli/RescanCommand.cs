using System.CommandLine;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary><c>iserblockctl rescan NODE [LUN]</c>, as <c>iscsiadm -m session -R</c>: the daemon reads the size of the node's
/// mapped LUNs again (new NBD connections and the kernel device get a changed size), unmaps those the target no longer
/// has (reporting those in use) and lists the target's LUNs that are not mapped.</summary>
public static class RescanCommand
{
    public static Command Create(CtlContext context)
    {
        var node = ControlCommandSupport.NodeArgument();
        var lun = new Argument<int?>("LUN") { Description = "Only this LUN", Arity = ArgumentArity.ZeroOrOne };
        var control = new ControlCommandSupport();
        var command = new Command("rescan", "Read the LUNs' sizes again and pick up LUNs added or removed at the target") { node, lun };
        control.AddTo(command);
        command.SetAction((result, cancellationToken) => context.RunAsync(result, control.Output, (_, stdout) =>
            control.SendAsync(result, stdout, new ControlSocketRequest { Command = "rescan", Node = result.GetValue(node), Lun = result.GetValue(lun) },
                ControlCommandSupport.RenderMessage, cancellationToken)));
        return command;
    }
}
