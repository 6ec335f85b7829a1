using System.CommandLine;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// Exposing and withdrawing one LUN of a logged-in node: <c>iserblockctl map NODE LUN [--device auto|/dev/nbdN|ublk|/dev/ublkbN]
/// [--socket PATH] [--listen ADDR:PORT] [--export-name NAME] [--read-only]</c> (without any of device/socket/listen,
/// <c>--device auto</c>) and <c>iserblockctl unmap NODE LUN</c> (exports and device withdrawn after a flush).
/// </summary>
public static class MappingCommands
{
    public static Command Map(CtlContext context)
    {
        var node = ControlCommandSupport.NodeArgument();
        var lun = ControlCommandSupport.LunArgument();
        var device = new Option<string?>("--device", "-d") { Description = "Attach as a kernel device: auto or /dev/nbdN (nbd), ublk or /dev/ublkbN (ublk)", HelpName = "DEVICE" };
        var socket = new Option<string?>("--socket", "-k") { Description = "Serve NBD on this Unix socket", HelpName = "PATH" };
        var listen = new Option<string?>("--listen", "-b") { Description = "Serve NBD on TCP ADDRESS[:PORT]", HelpName = "ADDR:PORT" };
        var exportName = new Option<string?>("--export-name", "-x") { Description = "NBD export name (default NODE-LUN)", HelpName = "NAME" };
        var readOnly = new Option<bool>("--read-only", "-r") { Description = "Expose the LUN read-only" };
        return ControlCommandSupport.Create(context, "map", "Expose a LUN of a logged-in node as a kernel device and/or NBD export",
            [node, lun, device, socket, listen, exportName, readOnly], result =>
            {
                var socketPath = result.GetValue(socket) is { } s ? Path.GetFullPath(s) : null;
                return new ControlSocketRequest
                {
                    Command = "map",
                    Node = result.GetValue(node),
                    Lun = result.GetValue(lun),
                    Device = result.GetValue(device) ?? (socketPath == null && result.GetValue(listen) == null ? "auto" : null),
                    Socket = socketPath,
                    Listen = result.GetValue(listen),
                    ExportName = result.GetValue(exportName),
                    ReadOnly = result.GetValue(readOnly) ? true : null,
                };
            });
    }

    public static Command Unmap(CtlContext context)
    {
        var node = ControlCommandSupport.NodeArgument();
        var lun = ControlCommandSupport.LunArgument();
        return ControlCommandSupport.Create(context, "unmap", "Withdraw a LUN's exports and kernel device (after a flush); refused while the device is in use",
            [node, lun], result => new ControlSocketRequest { Command = "unmap", Node = result.GetValue(node), Lun = result.GetValue(lun) });
    }
}
