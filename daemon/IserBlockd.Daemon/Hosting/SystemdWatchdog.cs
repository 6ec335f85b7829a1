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
public sealed partial class SystemdWatchdog : BackgroundService
{
    private static readonly ServiceState Ping = new("WATCHDOG=1");

    private readonly ISystemdNotifier _notifier;
    private readonly ILogger _logger;
    private readonly TimeSpan? _interval;
    private readonly TimeProvider _time;

    public SystemdWatchdog(ISystemdNotifier notifier, ILogger<SystemdWatchdog> logger)
        : this(notifier, logger, Interval(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), Environment.GetEnvironmentVariable("WATCHDOG_PID")))
    {
    }

    /// <param name="time">The clock of the pings; tests pass a fake one.</param>
    internal SystemdWatchdog(ISystemdNotifier notifier, ILogger<SystemdWatchdog> logger, TimeSpan? interval, TimeProvider? time = null)
    {
        _notifier = notifier;
        _logger = logger;
        _interval = interval;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The watchdog interval systemd set (WatchdogSec= in the unit, passed as WATCHDOG_USEC), or null when
    /// there is none or it is meant for another process (WATCHDOG_PID).</summary>
    public static TimeSpan? Interval(string? usec, string? pid)
    {
        if (usec == null || !ulong.TryParse(usec, NumberStyles.None, CultureInfo.InvariantCulture, out var micro) || micro == 0)
            return null;
        if (pid != null && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
            return null;
        return TimeSpan.FromMicroseconds(micro);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_notifier.IsEnabled || _interval is not { } interval)
            return;
        var period = interval / 2;
        LogEnabled(interval.TotalSeconds);
        using var timer = new PeriodicTimer(period, _time);
        _notifier.Notify(Ping);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
                _notifier.Notify(Ping);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(LogLevel.Debug, "systemd watchdog: {Seconds} s, pinging at half that")]
    private partial void LogEnabled(double seconds);
}
