using System.Net;
using System.Net.Sockets;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Transport.Tcp;

namespace IserBlockd.Transport.Tests.Tcp;

/// <summary>
/// Receive coalescing on a real loopback TCP connection: with many answers owed the wake-up is held (SO_RCVLOWAT
/// raised) until half their bytes have come, never longer than the window, and never with few owed.
/// </summary>
public sealed class ReceiveCoalescingTests : IAsyncLifetime
{
    private Socket _peer = null!;
    private Socket _client = null!;

    public async Task InitializeAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        _client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = listener.AcceptAsync();
        await _client.ConnectAsync(listener.LocalEndPoint!);
        _peer = await accept;
        _peer.NoDelay = true;
    }

    public Task DisposeAsync()
    {
        _peer.Dispose();
        _client.Dispose();
        return Task.CompletedTask;
    }

    private TcpIscsiConnection Connect(TimeSpan window) =>
        new(new NetworkStream(_client, ownsSocket: false), null, null, new TcpTransportOptions { ReceiveCoalescingWindow = window });

    /// <summary>SO_RCVLOWAT of our side, as the kernel has it.</summary>
    private int ReceiveLowWater()
    {
        var value = new byte[sizeof(int)];
        _client.GetRawSocketOption(1, 18, value);
        return BitConverter.ToInt32(value);
    }

    /// <summary>SCSI Responses (48 bytes each) with ITTs from <paramref name="first"/>.</summary>
    private static byte[] Responses(int count, uint first = 1)
    {
        var wire = new byte[count * BasicHeaderSegment.Length];
        for (var i = 0; i < count; i++)
            new ScsiResponsePdu { InitiatorTaskTag = first + (uint)i, StatSN = (uint)i }.Write(wire.AsSpan(i * BasicHeaderSegment.Length, BasicHeaderSegment.Length));
        return wire;
    }

    [Fact]
    public async Task A_held_receive_wakes_once_the_answers_it_waits_for_have_come()
    {
        // A window of an hour: only the bytes can end this wait.
        await using var connection = Connect(TimeSpan.FromHours(1));
        connection.ExpectAnswers(32, 32 * BasicHeaderSegment.Length);
        var receive = connection.ReceiveHeaderAsync(default).AsTask();
        await Wait.Until(() => connection.HoldingReceive, "the receive to be held");
        // Half the bytes of the owed answers: 16 SCSI Responses.
        Assert.Equal(16 * BasicHeaderSegment.Length, ReceiveLowWater());

        _peer.Send(Responses(10));
        await Task.Delay(200);
        Assert.False(receive.IsCompleted, "woke before the 16 answers it holds for had come");

        _peer.Send(Responses(10, first: 11));
        var pdu = await receive.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1u, pdu.InitiatorTaskTag);
        // Everything that came is there, in order, without another wait.
        for (uint itt = 2; itt <= 20; itt++)
        {
            Assert.True(connection.HasBufferedHeader);
            Assert.Equal(itt, (await connection.ReceiveHeaderAsync(default)).InitiatorTaskTag);
        }

        // The next wait with as many owed holds for the same bytes without setting them again; with few owed, 1.
        Assert.Equal(16 * BasicHeaderSegment.Length, ReceiveLowWater());
        connection.ExpectAnswers(3, 3 * BasicHeaderSegment.Length);
        receive = connection.ReceiveHeaderAsync(default).AsTask();
        await Wait.Until(() => !connection.HoldingReceive, "the hold to end");
        Assert.Equal(1, ReceiveLowWater());
        _peer.Send(Responses(1, first: 21));
        Assert.Equal(21u, (await receive.WaitAsync(TimeSpan.FromSeconds(10))).InitiatorTaskTag);
    }

    [Fact]
    public async Task The_rest_of_a_PDU_is_never_held_for_more_bytes()
    {
        await using var connection = Connect(TimeSpan.FromHours(1));
        connection.ExpectAnswers(32, 32 * BasicHeaderSegment.Length);
        var receive = connection.ReceiveHeaderAsync(default).AsTask();
        await Wait.Until(() => connection.HoldingReceive, "the receive to be held");
        var header = new byte[BasicHeaderSegment.Length];
        new DataInPdu { Final = true, HasStatus = true, DataSegmentLength = 4096, InitiatorTaskTag = 5 }.Write(header);
        var data = Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray();
        _peer.Send([.. header, .. data.AsSpan(0, 4000)]);
        Assert.Equal(5u, (await receive.WaitAsync(TimeSpan.FromSeconds(10))).InitiatorTaskTag);

        // 96 bytes are missing, fewer than the hold's 768: the read for them lowers SO_RCVLOWAT first.
        var destination = new byte[4096];
        var landing = connection.ReceiveDataAsync(destination, default).AsTask();
        await Wait.Until(() => !connection.HoldingReceive, "the hold to end");
        Assert.Equal(1, ReceiveLowWater());
        _peer.Send(data.AsSpan(4000).ToArray());
        await landing.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(data, destination);
    }

    [Fact]
    public async Task A_held_receive_takes_what_is_there_when_the_window_ends()
    {
        // One answer (a failed READ's status, say) where 16 were expected: the window bounds the wait.
        await using var connection = Connect(TimeSpan.FromMilliseconds(20));
        connection.ExpectAnswers(32, 32 * BasicHeaderSegment.Length);
        var receive = connection.ReceiveHeaderAsync(default).AsTask();
        await Wait.Until(() => connection.HoldingReceive, "the receive to be held");
        _peer.Send(Responses(1, first: 7));
        var pdu = await receive.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(7u, pdu.InitiatorTaskTag);
        Assert.Equal(1, ReceiveLowWater());
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 4144)]
    [InlineData(15, 15 * 4144)]
    [InlineData(32, 32 * (48 + 32768))] // 32 KiB READs: a hold of the receive buffer would not span two answers
    public async Task Few_or_large_answers_owed_are_never_held(int owed, long bytes)
    {
        await using var connection = Connect(TimeSpan.FromHours(1));
        connection.ExpectAnswers(owed, bytes);
        var receive = connection.ReceiveHeaderAsync(default).AsTask();
        await Task.Delay(50);
        Assert.False(connection.HoldingReceive);
        Assert.Equal(1, ReceiveLowWater());
        _peer.Send(Responses(1, first: 3));
        Assert.Equal(3u, (await receive.WaitAsync(TimeSpan.FromSeconds(10))).InitiatorTaskTag);
    }

    [Theory]
    [InlineData(20, 20 * (48 + 512), 10 * (48 + 512))]
    [InlineData(40, 40 * (48 + 4096), 64 * 1024)] // no more than the receive buffer takes
    [InlineData(1, 48 + 65536, (48 + 65536) / 2)] // one 64 KiB READ: its Data-In is read straight into its buffer...
    [InlineData(8, 8 * (48 + (1 << 20)), 512 * 1024)] // ...so large READs hold for up to two 256 KiB segments
    public async Task A_hold_is_for_half_the_bytes_owed(int answers, long bytes, int lowWater)
    {
        await using var connection = Connect(TimeSpan.FromHours(1));
        connection.ExpectAnswers(answers, bytes);
        var receive = connection.ReceiveHeaderAsync(default).AsTask();
        await Wait.Until(() => connection.HoldingReceive, "the receive to be held");
        Assert.Equal(lowWater, ReceiveLowWater());
        _peer.Send(Responses(lowWater / BasicHeaderSegment.Length + 1, first: 100));
        Assert.Equal(100u, (await receive.WaitAsync(TimeSpan.FromSeconds(10))).InitiatorTaskTag);
    }
}
