using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Hosting;

/// <summary>
/// Sends WATCHDOG=1 at half the interval systemd asks for (WatchdogSec= in the unit, passed as
/// WATCHDOG_USEC), so that a hung daemon is restarted. The pings come from the thread pool, which is
/// what every request and every session of the daemon runs on.
/// </summary>
public sealed partial class SystemdWatchdog(ISystemdNotifier notifier, ILogger<SystemdWatchdog> logger) : BackgroundService
{
    private static readonly ServiceState Ping = new("WATCHDOG=1");

    /// <summary>The watchdog interval systemd set for this process, or null when there is none.</summary>
    public static TimeSpan? Interval()
    {
        var usec = Environment.GetEnvironmentVariable("WATCHDOG_USEC");
        if (usec == null || !ulong.TryParse(usec, NumberStyles.None, CultureInfo.InvariantCulture, out var micro) || micro == 0)
            return null;
        // WATCHDOG_PID, when present, says which process the watchdog is for.
        var pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (pid != null && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
            return null;
        return TimeSpan.FromMicroseconds(micro);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!notifier.IsEnabled || Interval() is not { } interval)
            return;
        var period = interval / 2;
        LogEnabled(interval.TotalSeconds);
        using var timer = new PeriodicTimer(period);
        notifier.Notify(Ping);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
                notifier.Notify(Ping);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(LogLevel.Debug, "systemd watchdog: {Seconds} s, pinging at half that")]
    private partial void LogEnabled(double seconds);
}
