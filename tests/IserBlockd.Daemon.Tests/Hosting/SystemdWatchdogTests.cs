using IserBlockd.Daemon.Hosting;
using IserBlockd.TestSupport;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace IserBlockd.Daemon.Tests.Hosting;

public sealed class SystemdWatchdogTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30); // real time, only against a hung test

    [Fact]
    public async Task Pings_at_half_the_interval_systemd_asks_for_and_stops_with_the_host()
    {
        var time = new FakeTimeProvider();
        var notifier = new RecordingNotifier();
        using var watchdog = new SystemdWatchdog(notifier, NullLogger<SystemdWatchdog>.Instance, TimeSpan.FromSeconds(30), time);
        await watchdog.StartAsync(CancellationToken.None);
        await Wait.Until(() => notifier.Pings >= 1, $"{1} watchdog ping(s)", Deadline); // one at once
        for (var i = 2; i <= 4; i++)
        {
            // The timer is on the fake clock: no ping can come before its slot, 15 s after the one before.
            time.Advance(TimeSpan.FromSeconds(14.9));
            Assert.Equal(i - 1, notifier.Pings);
            time.Advance(TimeSpan.FromSeconds(0.1));
            await Wait.Until(() => notifier.Pings >= i, $"{i} watchdog ping(s)", Deadline);
        }
        await watchdog.StopAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(4, notifier.Pings);
        Assert.All(notifier.States, s => Assert.Equal("WATCHDOG=1", s));
    }

    [Fact]
    public async Task Without_a_watchdog_nothing_is_sent()
    {
        var time = new FakeTimeProvider();
        var notifier = new RecordingNotifier();
        using var watchdog = new SystemdWatchdog(notifier, NullLogger<SystemdWatchdog>.Instance, interval: null, time);
        await watchdog.StartAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(5));
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
        public int Pings { get { lock (_states) return _states.Count(s => s == "WATCHDOG=1"); } }

        public void Notify(ServiceState state)
        {
            lock (_states) _states.Add(state.ToString());
        }
    }
}
