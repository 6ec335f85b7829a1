using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Control;
using IserBlockd.Daemon.Runtime;
using IserBlockd.Daemon.Sessions;
using IserBlockd.TestSupport;
using IserBlockd.Transport.Selection;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace IserBlockd.Daemon.Tests.Runtime;

/// <summary>The supervisor's login backoff on a fake clock: a node whose portal refuses connections (a real closed port on
/// loopback) is tried again exactly when the doubling delay has passed on the injected <see cref="TimeProvider"/>, never
/// before, and at once when <c>iserblockctl login</c> asks.</summary>
public sealed class NodeSupervisorBackoffTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30); // real time, only against a hung test

    [Fact]
    public async Task A_failing_login_is_retried_on_the_doubling_delay_of_the_injected_clock()
    {
        var time = new FakeTimeProvider();
        using var log = new TestLoggerFactory(output);
        var settings = DaemonSettings.Defaults with { Reconnect = new ReconnectPolicy(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(40)) };
        var node = new NodeSettings($"backoff-{Guid.NewGuid():N}", [new HostPort("127.0.0.1", FreePort.Next())], "iqn.2024-01.test:none",
            IscsiTransportKind.Tcp, null, new OperationalOverrides(), []);
        await using var shared = new SharedResources(log);
        await using var supervisor = new NodeSupervisor(node, "iqn.2024-01.test:initiator", settings, shared, log, time);

        supervisor.Start();
        await supervisor.FirstAttempt.WaitAsync(Deadline);
        await Wait.Until(() => log.Lines.Any(m => m.Contains("(attempt 1:", StringComparison.Ordinal) && m.Contains("retrying in 10 s", StringComparison.Ordinal)), "attempt 1", Deadline);
        Assert.Equal(NodeState.LoggingIn, supervisor.State);
        Assert.NotNull(supervisor.LastError);
        Assert.Equal("logging-in", supervisor.Describe().State);

        // The timer of the second attempt is set (the line above is logged after it): nothing moves until 10 s pass.
        time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.Equal(1, log.Lines.Count(l => l.Contains("login failed", StringComparison.Ordinal)));
        time.Advance(TimeSpan.FromSeconds(0.1));
        await Wait.Until(() => log.Lines.Any(m => m.Contains("(attempt 2:", StringComparison.Ordinal) && m.Contains("retrying in 20 s", StringComparison.Ordinal)), "attempt 2", Deadline);

        time.Advance(TimeSpan.FromSeconds(19.9));
        Assert.Equal(2, log.Lines.Count(l => l.Contains("login failed", StringComparison.Ordinal)));
        time.Advance(TimeSpan.FromSeconds(0.1));
        await Wait.Until(() => log.Lines.Any(m => m.Contains("(attempt 3:", StringComparison.Ordinal) && m.Contains("retrying in 40 s", StringComparison.Ordinal)), "attempt 3", Deadline);

        // iserblockctl login: a retrying node tries again now, without the clock moving, and says why it failed.
        var response = await supervisor.LoginAsync(CancellationToken.None).WaitAsync(Deadline);
        Assert.False(response.Ok);
        Assert.Equal(ControlErrorCodes.LoginFailed, response.Error!.Code);
        Assert.Contains("still retrying", response.Error.Message, StringComparison.Ordinal);
        await Wait.Until(() => log.Lines.Any(m => m.Contains("(attempt 4:", StringComparison.Ordinal) && m.Contains("retrying in 40 s", StringComparison.Ordinal)), "attempt 4", Deadline);

        var logout = await supervisor.LogoutAsync(CancellationToken.None).WaitAsync(Deadline);
        Assert.True(logout.Ok, logout.Error?.Message);
        Assert.Equal(NodeState.LoggedOut, supervisor.State);
        Assert.Equal("logged-out", supervisor.Describe().State);
    }

    [Fact]
    public async Task Export_login_fails_at_once_without_retrying()
    {
        var time = new FakeTimeProvider();
        using var log = new TestLoggerFactory(output);
        var node = new NodeSettings($"once-{Guid.NewGuid():N}", [new HostPort("127.0.0.1", FreePort.Next())], "iqn.2024-01.test:none",
            IscsiTransportKind.Tcp, null, new OperationalOverrides(), []);
        await using var shared = new SharedResources(log);
        await using var supervisor = new NodeSupervisor(node, "iqn.2024-01.test:initiator", DaemonSettings.Defaults, shared, log, time);

        await Assert.ThrowsAnyAsync<IserBlockd.Iscsi.IscsiException>(() => supervisor.ConnectAsync(CancellationToken.None).WaitAsync(Deadline));
        Assert.Equal(NodeState.LoggedOut, supervisor.State);
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(0, log.Lines.Count(l => l.Contains("login failed", StringComparison.Ordinal)));
    }
}
