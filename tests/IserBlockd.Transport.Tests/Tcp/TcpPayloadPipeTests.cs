using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Primitives.Splicing;
using IserBlockd.Transport.Tcp;

namespace IserBlockd.Transport.Tests.Tcp;

/// <summary>
/// A Data-In segment whose destination is a buffer carrying a <see cref="PayloadPipe"/> is spliced from the TCP socket
/// into the pipe: the bytes never enter this process. The pipe stands for the buffer's leading bytes, so whatever
/// does not continue them (a gap, a retried command landing on them, a pipe too small, data digests) must still
/// leave the buffer and pipe together holding exactly what the target sent.
/// </summary>
public sealed class TcpPayloadPipeTests : IAsyncLifetime
{
    private Socket _peer = null!;
    private TcpIscsiConnection _connection = null!;

    /// <summary>Pinned memory that carries a pipe, as the NBD server's pooled buffers do for a READ that leaves by splice.</summary>
    private sealed unsafe class PipedBuffer(int length, int pipeCapacity) : MemoryManager<byte>, IPayloadPipeCarrier
    {
        private readonly byte[] _array = GC.AllocateArray<byte>(length, pinned: true);

        private readonly PayloadPipe _pipe = PayloadPipe.TryCreate(pipeCapacity) ?? throw new InvalidOperationException("no pipe");
        private bool _detached;

        public PayloadPipe? PayloadPipe => _detached ? null : _pipe;

        public void DetachPipe()
        {
            _detached = true;
            _pipe.MoveIntoBuffer(_array);
        }

        public override Span<byte> GetSpan() => _array;
        public override MemoryHandle Pin(int elementIndex = 0) => new(Unsafe.AsPointer(ref _array[elementIndex]));
        public override void Unpin() { }
        protected override void Dispose(bool disposing) => _pipe.Dispose();

        /// <summary>The buffer as a reader would see it once what the pipe holds is in place.</summary>
        public byte[] Settled()
        {
            _pipe.MoveIntoBuffer(_array);
            return _array;
        }
    }

    public async Task InitializeAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!);
        _peer = await accept;
        _peer.SendBufferSize = 4 << 20;
        _connection = new TcpIscsiConnection(new NetworkStream(client, ownsSocket: true), client.LocalEndPoint, client.RemoteEndPoint);
    }

    public async Task DisposeAsync()
    {
        await _connection.DisposeAsync();
        _peer.Dispose();
    }

    private static byte[] Random(int length)
    {
        var bytes = new byte[length];
        System.Random.Shared.NextBytes(bytes);
        return bytes;
    }

    /// <summary>Sends a Data-In with <paramref name="data"/> (and a data digest when asked) and receives it into
    /// <paramref name="destination"/>.</summary>
    private async Task DeliverAsync(byte[] data, Memory<byte> destination, bool dataDigest = false)
    {
        var header = new byte[48];
        new DataInPdu { DataSegmentLength = data.Length, InitiatorTaskTag = 7 }.Write(header);
        var wire = header.Concat(data).ToArray();
        if (dataDigest)
        {
            var digest = new byte[4];
            Crc32C.WriteDigest(digest, Crc32C.Compute(data));
            wire = [.. wire, .. digest];
        }
        var sending = _peer.SendAsync(wire);
        await _connection.ReceiveHeaderAsync(default);
        await _connection.ReceiveDataAsync(destination, default);
        await sending;
    }

    [Fact]
    public async Task Segments_that_continue_the_pipe_go_into_it_and_not_into_the_buffer()
    {
        using var buffer = new PipedBuffer(512 << 10, 512 << 10);
        var first = Random(256 << 10);
        var second = Random(256 << 10);
        // Large READs owed: the read at the PDU boundary takes the header alone, so nothing of the data passes here.
        _connection.ExpectAnswers(1, 512 << 10);
        await DeliverAsync(first, buffer.Memory[..first.Length]);
        await DeliverAsync(second, buffer.Memory[first.Length..]);

        Assert.Equal(512 << 10, buffer.PayloadPipe!.End);
        Assert.True(buffer.GetSpan().IndexOfAnyExcept((byte)0) < 0, "data went into the buffer as well as the pipe");
        Assert.Equal(first.Concat(second).ToArray(), buffer.Settled());
    }

    [Fact]
    public async Task A_segment_the_pipe_cannot_hold_finishes_in_the_buffer()
    {
        using var buffer = new PipedBuffer(1 << 20, 64 << 10);
        var data = Random(1 << 20);
        await DeliverAsync(data, buffer.Memory);
        Assert.Equal(0, buffer.PayloadPipe!.Length);
        Assert.Equal(data, buffer.GetSpan().ToArray());
    }

    [Fact]
    public async Task A_segment_landing_on_bytes_the_pipe_holds_moves_them_into_the_buffer_first()
    {
        using var buffer = new PipedBuffer(256 << 10, 256 << 10);
        var stale = Random(128 << 10);
        var retried = Random(128 << 10);
        var tail = Random(128 << 10);
        await DeliverAsync(stale, buffer.Memory[..stale.Length]);
        Assert.Equal(stale.Length, buffer.PayloadPipe!.End);
        // The command was retried: its data comes again from offset 0, then the rest.
        await DeliverAsync(retried, buffer.Memory[..retried.Length]);
        await DeliverAsync(tail, buffer.Memory[retried.Length..]);
        Assert.Equal(retried.Concat(tail).ToArray(), buffer.Settled());
    }

    [Fact]
    public async Task A_segment_after_a_gap_goes_into_the_buffer()
    {
        using var buffer = new PipedBuffer(256 << 10, 256 << 10);
        var later = Random(128 << 10);
        var earlier = Random(128 << 10);
        await DeliverAsync(later, buffer.Memory[(128 << 10)..]);
        Assert.Equal(0, buffer.PayloadPipe!.End);
        await DeliverAsync(earlier, buffer.Memory[..earlier.Length]);
        Assert.Equal(earlier.Length, buffer.PayloadPipe.End);
        Assert.Equal(earlier.Concat(later).ToArray(), buffer.Settled());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Splicing_into_a_socket_whose_peer_is_gone_throws_and_raises_no_signal(bool tcp)
    {
        Socket ours, peer;
        if (tcp)
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            ours = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var accept = listener.AcceptAsync();
            await ours.ConnectAsync(listener.LocalEndPoint!);
            peer = await accept;
            peer.LingerState = new LingerOption(true, 0); // a reset
        }
        else (ours, peer) = IserBlockd.Primitives.Native.SocketPair.Create();
        using (ours)
        {
            ours.Blocking = false;
            peer.Dispose();
            await Task.Delay(50);
            using var pipe = PayloadPipe.TryCreate(64 << 10)!;
            // EPIPE (a Unix socket) or ECONNRESET: an exception, not a SIGPIPE that would end this process.
            var error = Assert.Throws<IOException>(() =>
            {
                using var fd = new IserBlockd.Primitives.Native.DescriptorLease(ours.SafeHandle);
                for (var i = 0; i < 4; i++)
                {
                    pipe.Append(Random(4096));
                    pipe.SpliceTo(fd.Fd);
                }
            });
            Assert.Contains("splice", error.Message);
        }
    }

    [Fact]
    public async Task With_data_digests_the_bytes_are_received_to_be_checked()
    {
        await _connection.StartFullFeaturePhaseAsync(new FullFeaturePhaseContext(new NegotiatedParameters { DataDigest = DigestType.Crc32C }, 16), default);
        using var buffer = new PipedBuffer(256 << 10, 256 << 10);
        var data = Random(256 << 10);
        await DeliverAsync(data, buffer.Memory, dataDigest: true);
        Assert.Equal(0, buffer.PayloadPipe!.End);
        Assert.Equal(data, buffer.GetSpan().ToArray());
    }
}
