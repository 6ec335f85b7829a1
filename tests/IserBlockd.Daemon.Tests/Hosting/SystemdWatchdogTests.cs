using IserBlockd.Daemon.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging.Abstractions;

namespace IserBlockd.Daemon.Tests.Hosting;

public sealed class SystemdWatchdogTests
{
    [Fact]
    public async Task Pings_at_half_the_interval_systemd_asks_for_and_stops_with_the_host()
    {
        var notifier = new RecordingNotifier();
        using var watchdog = new SystemdWatchdog(notifier, NullLogger<SystemdWatchdog>.Instance, TimeSpan.FromMilliseconds(400));
        await watchdog.StartAsync(CancellationToken.None);
        await Task.Delay(TimeSpan.FromMilliseconds(1100));
        await watchdog.StopAsync(CancellationToken.None);
        var pings = notifier.States.Count(s => s == "WATCHDOG=1");
        Assert.InRange(pings, 4, 7); // one at once, then every 200 ms
        var after = notifier.States.Count;
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        Assert.Equal(after, notifier.States.Count);
    }

    [Fact]
    public async Task Without_a_watchdog_nothing_is_sent()
    {
        var notifier = new RecordingNotifier();
        using var watchdog = new SystemdWatchdog(notifier, NullLogger<SystemdWatchdog>.Instance, interval: null);
        await watchdog.StartAsync(CancellationToken.None);
        await Task.Delay(TimeSpan.FromMilliseconds(300));
        await watchdog.StopAsync(CancellationToken.None);
        Assert.Empty(notifier.States);
    }

    [Theory]
    [InlineData("30000000", null, 30.0)]
    [InlineData("0", null, null)]
    [InlineData("abc", null, null)]
    [InlineData(null, null, null)]
    [InlineData("1000000", "1", null)] // meant for another process
    public void Interval_comes_from_watchdog_usec_and_pid(string? usec, string? pid, double? seconds)
    {
        Assert.Equal(seconds, SystemdWatchdog.Interval(usec, pid)?.TotalSeconds);
    }

    private sealed class RecordingNotifier : ISystemdNotifier
    {
        private readonly List<string> _states = [];
        public bool IsEnabled => true;
        public IReadOnlyList<string> States { get { lock (_states) return [.. _states]; } }
        public void Notify(ServiceState state) { lock (_states) _states.Add(state.ToString()); }
    }
}
