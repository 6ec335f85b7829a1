using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// <c>iserblockctl list</c>: the daemon's sessions (node, target, portal, transport, state) and their LUNs (state,
/// device, size, block size, counters, exports), as two tables; <c>-o json</c> prints the sessions as JSON.
/// </summary>
public static class ListCommand
{
    public static Command Create(CtlContext context) =>
        ControlCommandSupport.Create(context, "list", "Sessions and LUNs of the running daemon, with their state and counters", [],
            _ => new ControlSocketRequest { Command = "list" }, RenderAsync);

    private static async Task RenderAsync(ControlSocketResponse response, TextWriter stdout, bool json)
    {
        var sessions = response.Sessions ?? [];
        if (json)
        {
            await stdout.WriteLineAsync(JsonSerializer.Serialize(sessions, ControlOutputJsonContext.Readable.ListSessionInfo)).ConfigureAwait(false);
            return;
        }
        if (sessions.Count == 0)
        {
            await stdout.WriteLineAsync("no nodes configured").ConfigureAwait(false);
            return;
        }
        var nodes = new TextTable("NODE", "TARGET", "PORTAL", "TRANSPORT", "STATE", "ISID", "TSIH", "RECONNECTS", "LAST ERROR");
        foreach (var s in sessions)
            nodes.Add(s.Node, s.Target, s.Portal, s.Transport, s.State, s.Isid ?? "-", s.Tsih?.ToString(CultureInfo.InvariantCulture) ?? "-",
                s.Reconnects.ToString(CultureInfo.InvariantCulture), s.LastError ?? "");
        await nodes.WriteAsync(stdout).ConfigureAwait(false);

        var luns = new TextTable("NODE", "LUN", "STATE", "DEVICE", "SIZE", "BLOCK", "READS", "WRITES", "READ", "WRITTEN", "FLUSHES", "ERRORS", "IN-FLIGHT", "EXPORTS");
        foreach (var s in sessions)
        {
            foreach (var l in s.Luns)
            {
                var c = l.Counters;
                luns.Add(s.Node, l.Lun.ToString(CultureInfo.InvariantCulture), l.State + (l.ReadOnly ? " (ro)" : ""), l.Device ?? "-",
                    l.SizeBytes > 0 ? ControlCommandSupport.Bytes(l.SizeBytes) : "-", l.BlockSize > 0 ? l.BlockSize.ToString(CultureInfo.InvariantCulture) : "-",
                    c.Reads.ToString(CultureInfo.InvariantCulture), c.Writes.ToString(CultureInfo.InvariantCulture),
                    ControlCommandSupport.Bytes(c.BytesRead), ControlCommandSupport.Bytes(c.BytesWritten),
                    c.Flushes.ToString(CultureInfo.InvariantCulture), c.Errors.ToString(CultureInfo.InvariantCulture),
                    c.InFlight.ToString(CultureInfo.InvariantCulture), l.Exports.Count > 0 ? string.Join(" ", l.Exports) : "-");
            }
        }
        if (luns.Count > 0)
        {
            await stdout.WriteLineAsync().ConfigureAwait(false);
            await luns.WriteAsync(stdout).ConfigureAwait(false);
        }
    }
}
