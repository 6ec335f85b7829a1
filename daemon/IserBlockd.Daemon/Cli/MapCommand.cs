using System.CommandLine;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// <c>iserblockctl map NODE LUN [--device auto|/dev/nbdN|ublk|/dev/ublkbN] [--socket PATH] [--listen ADDR:PORT] [--export-name NAME] [--read-only]</c>:
/// expose one more LUN of a logged-in node. Without any of device/socket/listen, <c>--device auto</c>.
/// </summary>
public static class MapCommand
{
    public static Command Create(CtlContext context)
    {
        var node = ControlCommandSupport.NodeArgument();
        var lun = ControlCommandSupport.LunArgument();
        var device = new Option<string?>("--device", "-d") { Description = "Attach as a kernel device: auto or /dev/nbdN (nbd), ublk or /dev/ublkbN (ublk)", HelpName = "DEVICE" };
        var socket = new Option<string?>("--socket", "-k") { Description = "Serve NBD on this Unix socket", HelpName = "PATH" };
        var listen = new Option<string?>("--listen", "-b") { Description = "Serve NBD on TCP ADDRESS[:PORT]", HelpName = "ADDR:PORT" };
        var exportName = new Option<string?>("--export-name", "-x") { Description = "NBD export name (default NODE-LUN)", HelpName = "NAME" };
        var readOnly = new Option<bool>("--read-only", "-r") { Description = "Expose the LUN read-only" };
        var control = new ControlCommandSupport();
        var command = new Command("map", "Expose a LUN of a logged-in node as a kernel device and/or NBD export") { node, lun, device, socket, listen, exportName, readOnly };
        control.AddTo(command);
        command.SetAction((result, cancellationToken) => context.RunAsync(result, control.Output, (_, stdout) =>
        {
            var socketPath = result.GetValue(socket) is { } s ? Path.GetFullPath(s) : null;
            var request = new ControlSocketRequest
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
            return control.SendAsync(result, stdout, request, ControlCommandSupport.RenderMessage, cancellationToken);
        }));
        return command;
    }
}
