using System.CommandLine;
using System.Text.Json;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary><c>iserblockctl status</c>: daemon version, pid, uptime, initiator name and a summary of sessions and LUNs.</summary>
public static class StatusCommand
{
    public static Command Create(CtlContext context) =>
        ControlCommandSupport.Create(context, "status", "Is the daemon running: version, uptime, sessions and LUNs summary", [],
            _ => new ControlSocketRequest { Command = "status" }, RenderAsync);

    private static async Task RenderAsync(ControlSocketResponse response, TextWriter stdout, bool json)
    {
        var s = response.Status ?? new StatusInfo();
        if (json)
        {
            await stdout.WriteLineAsync(JsonSerializer.Serialize(s, ControlOutputJsonContext.Readable.StatusInfo)).ConfigureAwait(false);
            return;
        }
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
