using System.Net;
using System.Net.Sockets;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Primitives.Native;
using IserBlockd.Primitives.Polling;
using IserBlockd.Transport.Tcp;

namespace IserBlockd.Transport.Tests.Polling;

/// <summary>
/// The I/O thread's poll at queue depth one: it ends as soon as a watched socket has something to read, runs out its
/// budget (and then backs off) when nothing comes, never runs with two I/Os in flight, and polls only sockets that
/// are registered (the TCP transport registers a connection's socket once it carries I/O).
/// </summary>
public sealed class LowDepthPollerTests
{
    /// <summary>Long enough that a poll ending early can only have been ended by the socket.</summary>
    private static readonly TimeSpan LongBudget = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan ShortBudget = TimeSpan.FromMilliseconds(2);

    [Fact]
    public async Task A_poll_ends_when_a_watched_socket_becomes_readable()
    {
        var poller = new LowDepthPoller(LongBudget);
        var (left, right) = SocketPair.Create();
        using (left)
        using (right)
        using (poller.Watch(right.SafeHandle))
        {
            poller.Started();
            var answer = Task.Run(async () =>
            {
                await Task.Delay(50);
                left.Send(new byte[1]);
            });
            poller.BeforeIdle(LowDepthWait.Answer);
            await answer;
            Assert.Equal(1, poller.Hits);
            Assert.Equal(0, poller.Misses);
            Assert.Equal(1, right.Available); // polling takes nothing: the data is still there for the receive
        }
    }

    [Fact]
    public void A_poll_that_finds_nothing_spends_its_budget_then_skips_the_next_chances()
    {
        var poller = new LowDepthPoller(ShortBudget);
        var (left, right) = SocketPair.Create();
        using (left)
        using (right)
        using (poller.Watch(right.SafeHandle))
        {
            poller.BeforeIdle(LowDepthWait.NextRequest); // a miss: skip 1
            Assert.Equal(1, poller.Misses);
            poller.BeforeIdle(LowDepthWait.NextRequest); // skipped
            Assert.Equal(1, poller.Misses);
            poller.BeforeIdle(LowDepthWait.NextRequest); // a second miss in a row: skip 3
            Assert.Equal(2, poller.Misses);
            for (var i = 0; i < 3; i++) poller.BeforeIdle(LowDepthWait.NextRequest);
            Assert.Equal(2, poller.Misses);

            // The other kind of wait keeps its own count: the target's answers are polled for even while the client's
            // pauses are not.
            left.Send(new byte[1]);
            poller.BeforeIdle(LowDepthWait.Answer);
            Assert.Equal(1, poller.Hits);

            // A hit ends the backoff: the next chance is polled.
            poller.BeforeIdle(LowDepthWait.NextRequest);
            Assert.Equal(2, poller.Hits);
            poller.BeforeIdle(LowDepthWait.NextRequest);
            Assert.Equal(3, poller.Hits);
        }
    }

    [Fact]
    public void Two_IOs_in_flight_are_never_polled_for()
    {
        var poller = new LowDepthPoller(LongBudget);
        var (left, right) = SocketPair.Create();
        using (left)
        using (right)
        using (poller.Watch(right.SafeHandle))
        {
            poller.Started();
            poller.Started();
            poller.BeforeIdle(LowDepthWait.Answer); // would take the whole budget if it polled
            Assert.Equal(0, poller.Hits + poller.Misses);
            poller.Finished();
            poller.Finished();
            Assert.Equal(0, poller.InFlight);
        }
    }

    [Fact]
    public void Only_watched_sockets_end_a_poll_and_off_never_polls()
    {
        var poller = new LowDepthPoller(ShortBudget);
        var (left, right) = SocketPair.Create();
        using (left)
        using (right)
        {
            poller.Watch(right.SafeHandle).Dispose();
            left.Send(new byte[1]);
            poller.BeforeIdle(LowDepthWait.Answer); // nothing watched: no poll at all
            Assert.Equal(0, poller.Hits + poller.Misses);

            var (otherLeft, otherRight) = SocketPair.Create();
            using (otherLeft)
            using (otherRight)
            using (poller.Watch(otherRight.SafeHandle))
            {
                poller.BeforeIdle(LowDepthWait.Answer); // the readable socket is not among the watched
                Assert.Equal(1, poller.Misses);
                Assert.Equal(0, poller.Hits);
            }

            using (LowDepthPoller.Off.Watch(right.SafeHandle))
            {
                LowDepthPoller.Off.BeforeIdle(LowDepthWait.Answer);
                Assert.False(LowDepthPoller.Off.Enabled);
                Assert.Equal(0, LowDepthPoller.Off.Hits + LowDepthPoller.Off.Misses);
            }
        }
    }

    [Fact]
    public async Task A_TCP_connection_is_watched_from_full_feature_phase_until_it_is_disposed()
    {
        var poller = new LowDepthPoller(ShortBudget);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var target = await accept;
        var connection = new TcpIscsiConnection(new NetworkStream(client, ownsSocket: true), client.LocalEndPoint, client.RemoteEndPoint,
            new TcpTransportOptions { LowDepthPoller = poller });
        try
        {
            target.Send(new byte[48]);
            while (client.Available == 0) await Task.Delay(1);
            poller.BeforeIdle(LowDepthWait.Answer); // login: not watched yet
            Assert.Equal(0, poller.Hits + poller.Misses);

            await connection.StartFullFeaturePhaseAsync(new FullFeaturePhaseContext(new(), 16), default);
            poller.BeforeIdle(LowDepthWait.Answer);
            Assert.Equal(1, poller.Hits);
        }
        finally
        {
            await connection.DisposeAsync();
        }
        poller.BeforeIdle(LowDepthWait.Answer); // disposed: nothing left to poll
        Assert.Equal(1, poller.Hits);
        Assert.Equal(0, poller.Misses);
    }
}
