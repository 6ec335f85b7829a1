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
        // Not timed against a wall clock (a busy machine only delays pings): wait for four, then check that none came
        // before its slot on the half-interval schedule (a late tick may be followed closely by the next one).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (notifier.Pings.Count < 4 && DateTime.UtcNow < deadline) await Task.Delay(20);
        await watchdog.StopAsync(CancellationToken.None);
        var pings = notifier.Pings;
        Assert.True(pings.Count >= 4, $"{pings.Count} watchdog pings in 30 s with a 400 ms interval");
        for (var i = 1; i < pings.Count; i++)
            Assert.True(pings[i] - pings[0] >= TimeSpan.FromMilliseconds(200 * i - 50),
                $"ping {i} came {(pings[i] - pings[0]).TotalMilliseconds} ms after the first; its slot is at {200 * i} ms");
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
        private readonly List<DateTime> _pings = [];
        public bool IsEnabled => true;
        public IReadOnlyList<string> States { get { lock (_states) return [.. _states]; } }
        public IReadOnlyList<DateTime> Pings { get { lock (_states) return [.. _pings]; } }
        public void Notify(ServiceState state)
        {
            lock (_states)
            {
                _states.Add(state.ToString());
                if (state.ToString() == "WATCHDOG=1") _pings.Add(DateTime.UtcNow);
            }
        }
    }
}
