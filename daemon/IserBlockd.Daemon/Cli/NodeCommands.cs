using System.CommandLine;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// The daemon's commands on one configured node: <c>iserblockctl login NODE</c>, <c>logout NODE</c> and
/// <c>rescan NODE [LUN]</c>, each one request whose answer is the daemon's sentence.
/// </summary>
public static class NodeCommands
{
    /// <summary>The daemon logs in to a configured node now and brings its mappings up.</summary>
    public static Command Login(CtlContext context) => Create(context, "login", "Log in to a configured node now (and map its LUNs)");

    /// <summary>Unmap the node's LUNs (flush, detach), then log out.</summary>
    public static Command Logout(CtlContext context) =>
        Create(context, "logout", "Unmap a node's LUNs (flushed, detached) and log out; refused while a device is in use");

    /// <summary>
    /// As <c>iscsiadm -m session -R</c>: the daemon reads the size of the node's mapped LUNs again (new NBD connections and
    /// the kernel device get a changed size), unmaps those the target no longer has (reporting those in use) and lists the
    /// target's LUNs that are not mapped.
    /// </summary>
    public static Command Rescan(CtlContext context)
    {
        var node = ControlCommandSupport.NodeArgument();
        var lun = new Argument<int?>("LUN") { Description = "Only this LUN", Arity = ArgumentArity.ZeroOrOne };
        return ControlCommandSupport.Create(context, "rescan", "Read the LUNs' sizes again and pick up LUNs added or removed at the target",
            [node, lun], result => new ControlSocketRequest { Command = "rescan", Node = result.GetValue(node), Lun = result.GetValue(lun) });
    }

    private static Command Create(CtlContext context, string name, string description)
    {
        var node = ControlCommandSupport.NodeArgument();
        return ControlCommandSupport.Create(context, name, description, [node],
            result => new ControlSocketRequest { Command = name, Node = result.GetValue(node) });
    }
}
