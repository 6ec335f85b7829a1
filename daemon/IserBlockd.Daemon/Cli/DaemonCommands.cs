using System.CommandLine;
using System.Globalization;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// The commands on the running daemon as a whole, one request each: <c>iserblockctl list</c> (its sessions and their
/// LUNs as two tables) and <c>iserblockctl status</c> (version, uptime, initiator and a summary), which differ only in
/// their renderers (<c>-o json</c> prints the answer's sessions or status as JSON), and <c>iserblockctl reload</c>.
/// </summary>
public static class DaemonCommands
{
    /// <summary>The sessions (node, target, portal, transport, state) and their LUNs (state, device, size, block size,
    /// counters, exports).</summary>
    public static Command List(CtlContext context) =>
        ControlCommandSupport.CreateView(context, "list", "Sessions and LUNs of the running daemon, with their state and counters", [],
            _ => new ControlSocketRequest { Command = "list" }, response => response.Sessions ?? [],
            ControlOutputJsonContext.Readable.ListSessionInfo, RenderSessionsAsync);

    /// <summary>Is the daemon running: version, pid, uptime, initiator name, sessions and LUNs in a few lines.</summary>
    public static Command Status(CtlContext context) =>
        ControlCommandSupport.CreateView(context, "status", "Is the daemon running: version, uptime, sessions and LUNs summary", [],
            _ => new ControlSocketRequest { Command = "status" }, response => response.Status ?? new StatusInfo(),
            ControlOutputJsonContext.Readable.StatusInfo, RenderStatusAsync);

    /// <summary>The daemon reads its configuration file again and applies the difference (as SIGHUP); a file that does
    /// not validate changes nothing, and the reason is printed.</summary>
    public static Command Reload(CtlContext context) =>
        ControlCommandSupport.Create(context, "reload", "Re-read the daemon's configuration file and apply what changed (as systemctl reload)", [],
            _ => new ControlSocketRequest { Command = "reload" });

    private static async Task RenderSessionsAsync(List<SessionInfo> sessions, TextWriter stdout)
    {
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

    private static async Task RenderStatusAsync(StatusInfo s, TextWriter stdout)
    {
        var uptime = TimeSpan.FromSeconds(s.UptimeSeconds);
        var recovering = s.SessionsRecovering > 0 ? $", {s.SessionsRecovering} reconnecting" : "";
        var failed = s.LunsFailed > 0 ? $", {s.LunsFailed} failed" : "";
        await stdout.WriteLineAsync($"iserblockd {s.Version} (pid {s.Pid}), up {Uptime(uptime)}").ConfigureAwait(false);
        await stdout.WriteLineAsync($"initiator  {s.InitiatorName}").ConfigureAwait(false);
        await stdout.WriteLineAsync($"config     {s.ConfigFile ?? "-"}").ConfigureAwait(false);
        await stdout.WriteLineAsync($"sessions   {s.SessionsLoggedIn}/{s.Nodes} logged in{recovering}").ConfigureAwait(false);
        await stdout.WriteLineAsync($"LUNs       {s.LunsMapped} mapped{failed}").ConfigureAwait(false);
    }

    private static string Uptime(TimeSpan t) =>
        t.TotalDays >= 1 ? $"{(int)t.TotalDays}d {t.Hours}h {t.Minutes}m"
        : t.TotalHours >= 1 ? $"{t.Hours}h {t.Minutes}m"
        : t.TotalMinutes >= 1 ? $"{t.Minutes}m {t.Seconds}s"
        : $"{t.Seconds}s";
}
