using System.Net;
using System.Net.Sockets;
using IserBlockd.BlockDev.Buffers;
using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Streams;
using IserBlockd.BlockDev.Tests.Support;
using IserBlockd.Primitives.Native;
using IserBlockd.Primitives.Splicing;
using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>
/// A large READ on a socket (Unix or TCP) arms its buffer's <see cref="PayloadPipe"/>: the device (over TCP: the iSCSI
/// receive loop) may splice the data into the pipe instead of the buffer, and the reply splices it on into the
/// client's socket. What the pipe holds stands for the buffer's leading bytes; every other outcome (part in the pipe,
/// a failed read, a socket that takes only part) must still answer with exactly the bytes read.
/// </summary>
public class PipedReplyTests(ITestOutputHelper output)
{
    private const int Region = 1 << 20;
    private const long Size = 8 << 20;
    private const byte Junk = 0xEE;

    public enum Fill { WholeInPipe, HalfInPipe, PartInPipeThenFail, HalfInPipeThenDetached }

    /// <summary>Reads from an in-memory device, then puts the data where a splicing receive would: into the pipe the
    /// buffer carries (as much as <see cref="Mode"/> says) and the rest into the buffer itself.</summary>
    private sealed class PipeFillingDevice(MemoryBlockDevice inner) : IBlockDevice
    {
        public Fill Mode { get; set; }
        public int PipesSeen;
        public Memory<byte> LastDestination;

        public BlockGeometry Geometry => inner.Geometry;
        public BlockDeviceFeatures Features => inner.Features;
        public IBlockBufferProvider Buffers => inner.Buffers;

        public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
        {
            var data = new byte[destination.Length];
            await inner.ReadAsync(offset, data, cancellationToken);
            destination.Span.Fill(Junk);
            LastDestination = destination;
            var pipe = PayloadPipe.Behind(destination, out _, out var start);
            if (pipe == null)
            {
                data.CopyTo(destination);
                return;
            }
            PipesSeen++;
            Assert.Equal(0, start);
            Assert.Equal(0, pipe.Length);
            var inPipe = Mode == Fill.WholeInPipe ? data.Length : data.Length / 2;
            Assert.Equal(inPipe, pipe.Append(data.AsSpan(0, inPipe)));
            if (Mode == Fill.PartInPipeThenFail) throw new IOException("the target went away in the middle of the data");
            if (Mode == Fill.HalfInPipeThenDetached)
            {
                // As a read split into several commands does: from here on the buffer takes every byte.
                PayloadPipe.Detach(destination);
                Assert.Null(PayloadPipe.Behind(destination, out _, out _));
                Assert.True(destination.Span[..inPipe].SequenceEqual(data.AsSpan(0, inPipe)), "detaching did not bring the pipe's bytes into the buffer");
            }
            data.AsSpan(inPipe).CopyTo(destination.Span[inPipe..]);
        }

        public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken) => inner.WriteAsync(offset, source, fua, cancellationToken);
        public ValueTask FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public ValueTask TrimAsync(long offset, long length, CancellationToken cancellationToken) => inner.TrimAsync(offset, length, cancellationToken);
        public ValueTask WriteZeroesAsync(long offset, long length, bool mayUnmap, CancellationToken cancellationToken) => inner.WriteZeroesAsync(offset, length, mayUnmap, cancellationToken);
        public ValueTask<int> GetAllocationAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken) => inner.GetAllocationAsync(offset, length, extents, cancellationToken);
        public ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken) => inner.PrefetchAsync(offset, length, cancellationToken);
    }

    private static byte[] Expected(int region)
    {
        var bytes = new byte[Region];
        new Random(region).NextBytes(bytes);
        return bytes;
    }

    private static PipeFillingDevice PatternedDevice()
    {
        var inner = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { Buffers = new PinnedBlockBufferPool() });
        for (var i = 0; i < Size / Region; i++) inner.Write((long)i * Region, Expected(i));
        return new PipeFillingDevice(inner);
    }

    private async Task<(RawNbdClient Client, Task Serving, NbdServer Server)> ServeAsync(PipeFillingDevice device, bool structured, int? sendBuffer = null, bool tcp = false)
    {
        var server = new NbdServer(null, new TestLoggerFactory(output));
        var (clientEnd, serverEnd) = tcp ? await TcpPairAsync() : SocketPair.Create();
        // Room for a whole reply (as the daemon's listeners give), or the size the test asks for.
        if (sendBuffer is { } bytes) serverEnd.SendBufferSize = bytes;
        var transport = sendBuffer == null ? new SocketTransport(serverEnd, 8 << 20, null) : new SocketTransport(serverEnd);
        var serving = server.ServeTransmissionAsync(transport, new NbdExport("", device), structured);
        var client = RawNbdClient.ForTransmission(clientEnd, Size);
        client.StructuredReplies = structured;
        await Task.Yield();
        return (client, serving, server);
    }

    private static async Task<(Socket Client, Socket Server)> TcpPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!);
        return (client, await accept);
    }

    private static void AssertRegion(NbdReply reply, int region)
    {
        Assert.Equal(0u, reply.Error);
        var expected = Expected(region);
        var first = reply.Data.AsSpan().CommonPrefixLength(expected);
        Assert.True(first == Region, $"region {region}: the reply differs from the device's data at byte {first} (got 0x{(first < reply.Data.Length ? reply.Data[first] : 0):x2})");
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task A_payload_wholly_in_the_pipe_is_spliced_on_and_never_touches_the_buffer(bool structured, bool tcp)
    {
        var device = PatternedDevice();
        var (client, serving, server) = await ServeAsync(device, structured, tcp: tcp);
        await using (server)
        using (client)
        {
            for (var i = 0; i < 3; i++)
            {
                AssertRegion(client.ReadSync((ulong)i * Region, Region), i);
                // The buffer still holds what the device left there: the reply's bytes came from the pipe.
                Assert.True(device.LastDestination.Span.IndexOfAnyExcept(Junk) < 0, "the reply's payload passed through the buffer");
            }
            Assert.Equal(3, device.PipesSeen);
            client.Disconnect();
            await serving.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    [Theory]
    [InlineData(Fill.HalfInPipe)]
    [InlineData(Fill.HalfInPipeThenDetached)]
    public async Task A_payload_partly_in_the_pipe_comes_together_in_the_buffer(Fill mode)
    {
        var device = PatternedDevice();
        device.Mode = mode;
        var (client, serving, server) = await ServeAsync(device, structured: false);
        await using (server)
        using (client)
        {
            for (var i = 0; i < 3; i++) AssertRegion(client.ReadSync((ulong)i * Region, Region), i);
            Assert.Equal(3, device.PipesSeen);
            client.Disconnect();
            await serving.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public async Task A_read_that_fails_with_bytes_in_the_pipe_leaves_none_for_the_next_reply()
    {
        var device = PatternedDevice();
        var (client, serving, server) = await ServeAsync(device, structured: true);
        await using (server)
        using (client)
        {
            device.Mode = Fill.PartInPipeThenFail;
            Assert.NotEqual(0u, client.ReadSync(0, Region).Error);
            // The same pooled buffer (and its pipe) serves the next READ: stale bytes would lead its reply.
            device.Mode = Fill.WholeInPipe;
            for (var i = 1; i < 3; i++) AssertRegion(client.ReadSync((ulong)i * Region, Region), i);
            Assert.Equal(3, device.PipesSeen);
            client.Disconnect();
            await serving.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task What_the_socket_does_not_take_at_once_follows_from_the_buffer(bool tcp)
    {
        var device = PatternedDevice();
        // The kernel's smallest send buffer: the splice moves a little, the rest comes out of the pipe and waits for room.
        var (client, serving, server) = await ServeAsync(device, structured: false, sendBuffer: 4096, tcp: tcp);
        await using (server)
        using (client)
        {
            for (var i = 0; i < 4; i++) client.Read((ulong)i * Region, Region);
            for (var i = 0; i < 4; i++) AssertRegion(client.ReadReply(), i);
            Assert.Equal(4, device.PipesSeen);
            client.Disconnect();
            await serving.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_client_that_goes_away_in_the_middle_of_a_spliced_reply_ends_only_its_connection(bool tcp)
    {
        var device = PatternedDevice();
        var (client, serving, server) = await ServeAsync(device, structured: false, sendBuffer: 4096, tcp: tcp);
        await using (server)
        {
            for (var i = 0; i < 4; i++) client.Read((ulong)i * Region, Region);
            await Task.Delay(100); // the writer is in the middle of the first payload: the socket holds 4 KiB of it
            client.Socket.LingerState = new System.Net.Sockets.LingerOption(true, 0); // a reset, not a clean close
            client.Dispose();
            // The rest of the reply fails with EPIPE/ECONNRESET: the connection ends, the process goes on, and the
            // buffers' pipes are left empty for the next rental.
            await serving.WaitAsync(TimeSpan.FromSeconds(30));
        }
        // The server still serves: a new client reads intact data through the same buffers and pipes.
        var (again, servingAgain, serverAgain) = await ServeAsync(device, structured: false, tcp: tcp);
        await using (serverAgain)
        using (again)
        {
            AssertRegion(again.ReadSync(2 * Region, Region), 2);
            again.Disconnect();
            await servingAgain.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public async Task Reads_below_the_threshold_get_no_pipe()
    {
        var device = PatternedDevice();
        var (client, serving, server) = await ServeAsync(device, structured: false);
        await using (server)
        using (client)
        {
            var reply = client.ReadSync(Region, 32 << 10);
            Assert.Equal(Expected(1).AsSpan(0, 32 << 10).ToArray(), reply.Data);
            Assert.Equal(0, device.PipesSeen);
            client.Disconnect();
            await serving.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }
}
