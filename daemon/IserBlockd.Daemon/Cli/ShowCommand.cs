using System.CommandLine;
using System.Globalization;
using System.Text;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// <c>iserblockctl show NODE</c>, as <c>iscsiadm -m session -P 3</c>: portal, transport and why it was chosen, ISID and
/// TSIH, every negotiated key, the command window, command counters and the LUNs; <c>-o json</c> for scripts.
/// </summary>
public static class ShowCommand
{
    public static Command Create(CtlContext context)
    {
        var node = ControlCommandSupport.NodeArgument();
        return ControlCommandSupport.CreateView(context, "show", "One node's session in detail: portal, transport, ISID/TSIH, negotiated keys, command window, LUNs",
            [node], result => new ControlSocketRequest { Command = "show", Node = result.GetValue(node) },
            response => response.Sessions?.FirstOrDefault() ?? new SessionInfo(), ControlOutputJsonContext.Readable.SessionInfo,
            (session, stdout) => stdout.WriteAsync(Format(session)));
    }

    public static string Format(SessionInfo s)
    {
        var text = new StringBuilder();
        void Line(string name, string value) => text.Append(CultureInfo.InvariantCulture, $"{name + ":",-17} {value}\n");
        Line("Node", s.Node);
        Line("Target", s.Target);
        Line("Portal", s.Portal);
        Line("Transport", s.TransportReason is { } why ? $"{s.Transport} ({why})" : s.Transport);
        Line("State", s.LastError is { } error ? $"{s.State} ({error})" : s.State);
        Line("ISID", s.Isid ?? "-");
        Line("TSIH", s.Tsih?.ToString(CultureInfo.InvariantCulture) ?? "-");
        Line("Reconnects", s.Reconnects.ToString(CultureInfo.InvariantCulture));
        if (s.CommandWindow is { } w)
            Line("Command window", $"CmdSN {w.CmdSn}, ExpCmdSN {w.ExpCmdSn}, MaxCmdSN {w.MaxCmdSn} ({w.Open} open)");
        if (s.Commands is { } c)
            Line("Commands", $"{c.Outstanding} outstanding, {c.Sent} sent, {c.Timeouts} timed out, {c.Aborts} aborted, {c.LunResets} LUN resets, {c.Reissued} re-issued");
        if (s.Parameters is { Count: > 0 } parameters)
        {
            text.Append("Negotiated:\n");
            var width = parameters.Max(p => p.Key.Length);
            foreach (var p in parameters) text.Append(CultureInfo.InvariantCulture, $"  {p.Key.PadRight(width)} = {p.Value}\n");
        }
        text.Append("LUNs:\n");
        if (s.Luns.Count == 0) text.Append("  none\n");
        foreach (var l in s.Luns)
        {
            var where = string.Join(" ", new[] { l.Device }.Concat(l.Exports).Where(x => x != null));
            var size = l.SizeBytes > 0 ? $"{ControlCommandSupport.Bytes(l.SizeBytes)}, block {l.BlockSize}" : "-";
            var what = l.Vendor != null ? $"{l.Vendor} {l.Product}, " : "";
            text.Append(CultureInfo.InvariantCulture, $"  LUN {l.Lun}: {l.State}{(l.ReadOnly ? " (ro)" : "")}, {what}{size}{(where.Length > 0 ? ", " + where : "")}\n");
        }
        return text.ToString();
    }
}
