using System.Net;
using System.Net.Sockets;
using IserBlockd.Transport.Tcp;

namespace IserBlockd.Transport.Tests.Tcp;

/// <summary>
/// The thread that ends receive holds at their window, on real loopback TCP sockets (SO_RCVLOWAT as the kernel has
/// it): each test has a watch of its own, so wake-ups are counted for its holds alone.
/// </summary>
public sealed class HoldDeadlineWatchTests : IAsyncLifetime
{
    private const int Owed = 32, Answer = 48;
    private readonly List<Socket> _sockets = [];
    private readonly HoldDeadlineWatch _watch = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        foreach (var socket in _sockets) socket.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Our end of a fresh loopback connection, holding for 16 answers of 48 bytes when asked.</summary>
    private async Task<(ReceiveCoalescing Coalescing, Socket Socket)> ConnectAsync(TimeSpan window)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!);
        _sockets.Add(client);
        _sockets.Add(await accept);
        var coalescing = new ReceiveCoalescing(client, new TcpTransportOptions { ReceiveCoalescingWindow = window }, 64 * 1024, _watch);
        coalescing.Expect(Owed, Owed * Answer);
        return (coalescing, client);
    }

    private static int LowWater(Socket socket)
    {
        var value = new byte[sizeof(int)];
        socket.GetRawSocketOption(1, 18, value);
        return BitConverter.ToInt32(value);
    }

    [Fact]
    public async Task A_hold_ends_at_its_window_while_a_longer_one_goes_on()
    {
        var (patient, patientSocket) = await ConnectAsync(TimeSpan.FromHours(1));
        var (hasty, hastySocket) = await ConnectAsync(TimeSpan.FromMilliseconds(50));
        patient.Hold(0);
        // The watch now plans to wake in an hour: the shorter hold must wake it sooner.
        await Wait.Until(() => _watch.WakeUps >= 1, "the watch to see the first hold");
        await Task.Delay(50);
        var started = DateTime.UtcNow;
        hasty.Hold(0);
        Assert.Equal(Owed * Answer / 2, LowWater(hastySocket));
        await Wait.Until(() => !hasty.Holding, "the 50 ms hold to end", TimeSpan.FromSeconds(5));
        var held = DateTime.UtcNow - started;
        Assert.InRange(held.TotalMilliseconds, 45, 1000);
        Assert.Equal(1, LowWater(hastySocket));
        Assert.True(patient.Holding);
        Assert.Equal(Owed * Answer / 2, LowWater(patientSocket));
        patient.Dispose();
        hasty.Dispose();
    }

    [Fact]
    public async Task Holds_that_keep_coming_wake_it_about_once_per_window_and_none_outlives_it()
    {
        var (coalescing, socket) = await ConnectAsync(TimeSpan.FromMilliseconds(100));
        var holds = 0;
        var until = DateTime.UtcNow.AddMilliseconds(600);
        while (DateTime.UtcNow < until)
        {
            // A wait at a PDU boundary, its answers come, the read inside the next PDU: as the receive loop does.
            coalescing.Hold(0);
            holds++;
            Assert.True(coalescing.Holding, "a hold ended before its window");
            Thread.Sleep(1); // a millisecond or so (Task.Delay's timer would make it several)
            coalescing.Release();
        }
        var wakeUps = _watch.WakeUps;
        Assert.True(holds >= 50, $"only {holds} holds");
        // Six windows, plus the first hold's wake-up and slack for a slow machine: not one per hold.
        Assert.InRange(wakeUps, 1, 12);

        // Nothing held: after one last look at the last hold's deadline it sleeps until the next hold.
        await Task.Delay(250);
        var idle = _watch.WakeUps;
        await Task.Delay(300);
        Assert.Equal(idle, _watch.WakeUps);
        Assert.Equal(1, LowWater(socket));

        coalescing.Hold(0);
        await Wait.Until(() => !coalescing.Holding, "the hold after the pause to end at its window", TimeSpan.FromSeconds(5));
        coalescing.Dispose();
    }

    [Fact]
    public async Task A_disposed_connection_is_forgotten()
    {
        var (coalescing, _) = await ConnectAsync(TimeSpan.FromMilliseconds(30));
        coalescing.Hold(0);
        coalescing.Dispose();
        var wakeUps = _watch.WakeUps;
        await Task.Delay(200);
        // At most the one wake-up already planned for the hold it had, which finds nothing to watch.
        Assert.InRange(_watch.WakeUps - wakeUps, 0, 1);
        Assert.False(coalescing.Watched);
    }
}
