using System.Net.Sockets;
using IserBlockd.BlockDev.Nbd.Transport.Epoll;
using IserBlockd.TestSupport;

namespace IserBlockd.BlockDev.Tests.Transport;

public class EpollSocketTransportTests
{
    [Fact]
    public async Task A_waiting_receive_completes_when_data_arrives()
    {
        var (peer, mine) = SocketPair.Create();
        using var _ = peer;
        await using var transport = EpollSocketTransport.Create(mine);
        var buffer = new byte[16];
        var receive = transport.ReceiveAsync(buffer).AsTask();
        await Task.Delay(50);
        Assert.False(receive.IsCompleted);
        peer.Send([1, 2, 3]);
        Assert.Equal(3, await receive.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal([1, 2, 3], buffer[..3]);
    }

    [Fact]
    public async Task Data_already_there_is_received_without_waiting()
    {
        var (peer, mine) = SocketPair.Create();
        using var _ = peer;
        peer.Send(new byte[100]);
        await using var transport = EpollSocketTransport.Create(mine);
        var receive = transport.ReceiveAsync(new byte[1000]);
        Assert.True(receive.IsCompleted);
        Assert.Equal(100, await receive);
    }

    [Fact]
    public async Task A_send_larger_than_the_socket_buffer_goes_out_in_parts_as_the_peer_reads()
    {
        var (peer, mine) = SocketPair.Create();
        using var _ = peer;
        await using var transport = EpollSocketTransport.Create(mine, sendBufferBytes: 64 << 10);
        var data = Enumerable.Range(0, 8 << 20).Select(i => (byte)(i * 13)).ToArray();
        var sending = Task.Run(async () =>
        {
            var remaining = (ReadOnlyMemory<byte>)data;
            while (!remaining.IsEmpty) remaining = remaining[await transport.SendAsync(remaining)..];
        });
        var received = new byte[data.Length];
        var filled = 0;
        peer.ReceiveTimeout = 10_000;
        while (filled < received.Length) filled += peer.Receive(received, filled, received.Length - filled, SocketFlags.None);
        await sending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(data, received);
    }

    [Fact]
    public async Task Shutting_down_receive_ends_a_waiting_receive_with_end_of_stream()
    {
        var (peer, mine) = SocketPair.Create();
        using var _ = peer;
        await using var transport = EpollSocketTransport.Create(mine);
        var receive = transport.ReceiveAsync(new byte[16]).AsTask();
        transport.ShutdownReceive();
        Assert.Equal(0, await receive.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(0, await transport.ReceiveAsync(new byte[16]));
        Assert.Equal(3, await transport.SendAsync(new byte[] { 7, 8, 9 })); // sending still works
    }

    [Fact]
    public async Task The_peer_closing_ends_a_waiting_receive()
    {
        var (peer, mine) = SocketPair.Create();
        await using var transport = EpollSocketTransport.Create(mine);
        var receive = transport.ReceiveAsync(new byte[16]).AsTask();
        peer.Dispose();
        Assert.Equal(0, await receive.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Abort_fails_a_waiting_send()
    {
        var (peer, mine) = SocketPair.Create();
        using var _ = peer;
        await using var transport = EpollSocketTransport.Create(mine, sendBufferBytes: 16 << 10);
        var big = new byte[4 << 20];
        var pending = transport.SendAsync(big);
        while (pending.IsCompleted) pending = transport.SendAsync(big); // fill the socket until a send waits
        var waiting = pending.AsTask();
        transport.Abort();
        await Assert.ThrowsAsync<IOException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Sending_to_a_closed_peer_is_an_io_error_not_a_signal()
    {
        var (peer, mine) = SocketPair.Create();
        peer.Dispose();
        await using var transport = EpollSocketTransport.Create(mine);
        await Assert.ThrowsAsync<IOException>(async () => await transport.SendAsync(new byte[100]));
    }

    [Fact]
    public async Task Many_connections_share_the_loops()
    {
        var pairs = Enumerable.Range(0, 64).Select(_ => SocketPair.Create()).ToArray();
        var transports = pairs.Select(p => EpollSocketTransport.Create(p.Right)).ToArray();
        var receives = transports.Select(t => t.ReceiveAsync(new byte[8]).AsTask()).ToArray();
        foreach (var (peer, _) in pairs) peer.Send([42]);
        Assert.All(await Task.WhenAll(receives).WaitAsync(TimeSpan.FromSeconds(10)), n => Assert.Equal(1, n));
        foreach (var t in transports) await t.DisposeAsync();
        foreach (var (peer, _) in pairs) peer.Dispose();
    }
}
