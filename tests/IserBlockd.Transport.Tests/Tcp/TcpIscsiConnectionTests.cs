using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Transport.Tcp;

namespace IserBlockd.Transport.Tests.Tcp;

/// <summary>
/// TCP framing against a raw peer socket on loopback: exact bytes out (padding, CRC32C digests), and every
/// malformed byte stream in (truncation anywhere, wrong digests, a clean close) reported as what it is.
/// </summary>
public sealed class TcpIscsiConnectionTests : IAsyncLifetime
{
    private Socket _peer = null!;
    private TcpIscsiConnection _connection = null!;
    private RecordingStream _stream = null!;
    private Socket _client = null!;

    public async Task InitializeAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!);
        _peer = await accept;
        _client = client;
        _stream = new RecordingStream(new NetworkStream(client, ownsSocket: true));
        _connection = new TcpIscsiConnection(_stream, client.LocalEndPoint, client.RemoteEndPoint);
    }

    public async Task DisposeAsync()
    {
        await _connection.DisposeAsync();
        _peer.Dispose();
    }

    private Task EnableDigestsAsync(bool header, bool data) => _connection.StartFullFeaturePhaseAsync(new FullFeaturePhaseContext(new NegotiatedParameters
    {
        HeaderDigest = header ? DigestType.Crc32C : DigestType.None,
        DataDigest = data ? DigestType.Crc32C : DigestType.None,
    }, 16), default).AsTask();

    private static byte[] DataInHeader(int length, uint itt = 7)
    {
        var h = new byte[48];
        new DataInPdu { Final = true, DataSegmentLength = length, InitiatorTaskTag = itt, BufferOffset = 0 }.Write(h);
        return h;
    }

    /// <summary>A PDU as a target puts it on the wire: header, digest, data, padding, digest.</summary>
    private static byte[] Frame(byte[] header, byte[] data, bool headerDigest, bool dataDigest)
    {
        var wire = new List<byte>(header);
        if (headerDigest) wire.AddRange(Digest(header));
        if (data.Length > 0)
        {
            var padded = data.Concat(new byte[PduLayout.Padding(data.Length)]).ToArray();
            wire.AddRange(padded);
            if (dataDigest) wire.AddRange(Digest(padded));
        }
        return [.. wire];
    }

    private static byte[] Digest(byte[] bytes)
    {
        var d = new byte[4];
        Crc32C.WriteDigest(d, Crc32C.Compute(bytes));
        return d;
    }

    private async Task<byte[]> ReceiveAllAsync(int count)
    {
        var buffer = new byte[count];
        var filled = 0;
        while (filled < count)
        {
            var n = await _peer.ReceiveAsync(buffer.AsMemory(filled));
            Assert.NotEqual(0, n);
            filled += n;
        }
        return buffer;
    }

    [Theory]
    [InlineData(false, false, 0)]
    [InlineData(false, false, 5)]
    [InlineData(true, true, 7)]
    [InlineData(true, false, 4096)]
    [InlineData(false, true, 100_001)] // above the copy threshold: written from the caller's memory
    public async Task Sends_exact_framing(bool headerDigest, bool dataDigest, int length)
    {
        await EnableDigestsAsync(headerDigest, dataDigest);
        var header = new byte[48];
        new DataOutPdu { Final = true, DataSegmentLength = length, InitiatorTaskTag = 3 }.Write(header);
        var data = new byte[length];
        Random.Shared.NextBytes(data);
        await _connection.SendAsync(new OutboundPdu(header, data), default);
        await _connection.FlushAsync(default);
        var expected = Frame(header, data, headerDigest, dataDigest);
        Assert.Equal(expected, await ReceiveAllAsync(expected.Length));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public async Task Receives_pdus_with_padding_and_digests(bool headerDigest, bool dataDigest)
    {
        await EnableDigestsAsync(headerDigest, dataDigest);
        var first = Enumerable.Range(0, 13).Select(i => (byte)i).ToArray();
        var second = new byte[300_000];
        Random.Shared.NextBytes(second);
        await _peer.SendAsync(Frame(DataInHeader(first.Length, 1), first, headerDigest, dataDigest).Concat(Frame(DataInHeader(second.Length, 2), second, headerDigest, dataDigest)).ToArray());

        var pdu = await _connection.ReceiveHeaderAsync(default);
        Assert.Equal((IscsiOpcode.DataIn, 1u, 13), (pdu.Opcode, pdu.InitiatorTaskTag, pdu.DataSegmentLength));
        Assert.Equal(first, (await _connection.ReceiveDataAsync(default, default)).ToArray());
        pdu = await _connection.ReceiveHeaderAsync(default);
        Assert.Equal(2u, pdu.InitiatorTaskTag);
        var destination = new byte[second.Length];
        var placed = await _connection.ReceiveDataAsync(destination, default);
        Assert.True(MemoryMarshal.TryGetArray(placed, out var segment) && ReferenceEquals(segment.Array, destination));
        Assert.Equal(second, destination);
    }

    [Fact]
    public async Task Every_pdu_one_receive_holds_is_parsed_without_another_read()
    {
        await EnableDigestsAsync(true, true);
        const int pdus = 8;
        var payloads = Enumerable.Range(0, pdus).Select(i => Enumerable.Range(0, 4096 + i).Select(b => (byte)(b * 7 + i)).ToArray()).ToArray();
        var wire = payloads.SelectMany((p, i) => Frame(DataInHeader(p.Length, (uint)i), p, true, true)).ToArray();
        await _peer.SendAsync(wire);
        // All of it waits in the socket before the first receive, as a burst of responses does.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (_client.Available < wire.Length && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.Equal(wire.Length, _client.Available);

        Assert.False(_connection.HasBufferedHeader);
        for (var i = 0; i < pdus; i++)
        {
            var receiving = _connection.ReceiveHeaderAsync(default);
            if (i > 0) Assert.True(receiving.IsCompletedSuccessfully, $"PDU {i} needed another read");
            var pdu = await receiving;
            Assert.Equal(((uint)i, payloads[i].Length), (pdu.InitiatorTaskTag, pdu.DataSegmentLength));
            Assert.False(_connection.HasBufferedHeader); // its data segment comes first
            var destination = new byte[payloads[i].Length];
            await _connection.ReceiveDataAsync(destination, default);
            Assert.Equal(payloads[i], destination);
            Assert.Equal(i < pdus - 1, _connection.HasBufferedHeader);
        }
        Assert.Single(_stream.Reads);
    }

    [Fact]
    public async Task Pdus_sent_together_leave_in_one_write_with_digests()
    {
        await EnableDigestsAsync(true, true);
        var expected = new List<byte>();
        for (var i = 0; i < 6; i++)
        {
            var header = new byte[48];
            var data = new byte[i == 0 ? 0 : 4096 + i]; // a command without data, then commands with immediate data
            Random.Shared.NextBytes(data);
            new ScsiCommandPdu { Final = true, Write = data.Length > 0, DataSegmentLength = data.Length, InitiatorTaskTag = (uint)i, ExpectedDataTransferLength = (uint)data.Length, Cdb = new byte[16] }.WriteHeader(header);
            await _connection.SendAsync(new OutboundPdu(header, data), default);
            expected.AddRange(Frame(header, data, true, true));
        }
        Assert.Equal(0, _stream.Writes);
        await _connection.FlushAsync(default);
        Assert.Equal(1, _stream.Writes);
        Assert.Equal(expected.ToArray(), await ReceiveAllAsync(expected.Count));
    }

    [Fact]
    public async Task Large_data_goes_from_the_socket_straight_into_the_destination()
    {
        var data = new byte[1 << 20];
        Random.Shared.NextBytes(data);
        var sending = _peer.SendAsync(Frame(DataInHeader(data.Length), data, false, false));
        await _connection.ReceiveHeaderAsync(default);
        var destination = new byte[data.Length];
        _stream.Reads.Clear();
        await _connection.ReceiveDataAsync(destination, default);
        await sending;
        Assert.Equal(data, destination);
        var direct = _stream.Reads.Where(r => ReferenceEquals(r.Array, destination)).Sum(r => r.Count);
        Assert.True(direct >= data.Length - 64 * 1024, $"only {direct} of {data.Length} bytes were read straight into the task buffer");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task With_large_answers_owed_a_read_at_the_pdu_boundary_leaves_the_data_segment_in_the_socket(bool largeOwed)
    {
        var data = new byte[96 << 10]; // all of it fits the socket's default receive buffer
        Random.Shared.NextBytes(data);
        // Four 96 KiB READs owed; or as many 4 KiB answers, where reading ahead saves system calls.
        _connection.ExpectAnswers(4, largeOwed ? 4L * data.Length : 4 * 4096);
        await _peer.SendAsync(Frame(DataInHeader(data.Length), data, false, false));
        await Wait.Until(() => _client.Available >= data.Length, "the PDU to wait whole in the socket");
        await _connection.ReceiveHeaderAsync(default);
        var destination = new byte[data.Length];
        await _connection.ReceiveDataAsync(destination, default);
        Assert.Equal(data, destination);
        var first = _stream.Reads[0].Count;
        var direct = _stream.Reads.Where(r => ReferenceEquals(r.Array, destination)).Sum(r => r.Count);
        if (largeOwed)
        {
            Assert.Equal(BasicHeaderSegment.Length, first);
            Assert.Equal(data.Length, direct);
        }
        else Assert.True(first > 32 << 10, $"the first read took {first} bytes: reading ahead is for small answers");
    }

    [Fact]
    public async Task A_data_segment_longer_than_we_receive_is_refused_before_any_memory_is_taken_for_it()
    {
        // Before the full feature phase: the login limit; a 16 MiB claim must not cost 16 MiB.
        await _peer.SendAsync(DataInHeader((1 << 24) - 1));
        await _connection.ReceiveHeaderAsync(default);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var e = await Assert.ThrowsAsync<IscsiProtocolException>(async () => await _connection.ReceiveDataAsync(default, default));
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 1 << 20, "memory was taken for the claimed segment");
        Assert.Equal($"DataIn PDU with a 16777215-byte data segment exceeds the {TcpIscsiConnection.LoginDataSegmentLimit} bytes we receive", e.Message);

        // In the full feature phase: what we declared.
        await using var connection = new TcpIscsiConnection(new NetworkStream(_peer, ownsSocket: false), null, null);
        await connection.StartFullFeaturePhaseAsync(new FullFeaturePhaseContext(new NegotiatedParameters { MaxRecvDataSegmentLength = 8192 }, 16), default);
        await _client.SendAsync(Frame(DataInHeader(8192), new byte[8192], false, false).Concat(DataInHeader(8196)).ToArray());
        await connection.ReceiveHeaderAsync(default);
        Assert.Equal(8192, (await connection.ReceiveDataAsync(default, default)).Length);
        await connection.ReceiveHeaderAsync(default);
        e = await Assert.ThrowsAsync<IscsiProtocolException>(async () => await connection.ReceiveDataAsync(default, default));
        Assert.Equal("DataIn PDU with a 8196-byte data segment exceeds the 8192 bytes we receive", e.Message);
    }

    [Fact]
    public async Task A_data_segment_the_caller_leaves_is_skipped_without_buffering_it()
    {
        var big = new byte[3 << 20];
        var sending = _peer.SendAsync(Frame(DataInHeader(big.Length, itt: 1), big, false, false).Concat(Frame(DataInHeader(5, itt: 2), [1, 2, 3, 4, 5], false, false)).ToArray());
        await _connection.ReceiveHeaderAsync(default);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var next = await _connection.ReceiveHeaderAsync(default); // the 3 MiB are read past, not into memory of ours
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 1 << 20, "the skipped segment was buffered");
        Assert.Equal(2u, DataInPdu.Read(next.Header.Span).InitiatorTaskTag);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, (await _connection.ReceiveDataAsync(default, default)).ToArray());
        await sending;
    }

    [Fact]
    public async Task Header_digest_mismatch()
    {
        await EnableDigestsAsync(true, false);
        var wire = Frame(DataInHeader(0), [], true, false);
        wire[48] ^= 0x01;
        await _peer.SendAsync(wire);
        var e = await Assert.ThrowsAsync<IscsiDigestException>(async () => await _connection.ReceiveHeaderAsync(default));
        Assert.StartsWith("header digest mismatch on a DataIn PDU", e.Message);
    }

    [Fact]
    public async Task Data_digest_mismatch()
    {
        await EnableDigestsAsync(false, true);
        var data = new byte[6];
        var wire = Frame(DataInHeader(data.Length), data, false, true);
        wire[50] ^= 0x80; // a data byte
        await _peer.SendAsync(wire);
        await _connection.ReceiveHeaderAsync(default);
        var e = await Assert.ThrowsAsync<IscsiDigestException>(async () => await _connection.ReceiveDataAsync(new byte[6], default));
        Assert.StartsWith("data digest mismatch on a 6-byte DataIn data segment", e.Message);
    }

    [Fact]
    public async Task Truncated_header()
    {
        await _peer.SendAsync(DataInHeader(0)[..20]);
        _peer.Shutdown(SocketShutdown.Send);
        var e = await Assert.ThrowsAsync<IscsiProtocolException>(async () => await _connection.ReceiveHeaderAsync(default));
        Assert.Equal("connection closed in the middle of a PDU: truncated PDU header (20 of 48 bytes)", e.Message);
    }

    [Fact]
    public async Task Truncated_data_segment()
    {
        await _peer.SendAsync(Frame(DataInHeader(64 * 1024), new byte[64 * 1024], false, false)[..(48 + 1000)]);
        _peer.Shutdown(SocketShutdown.Send);
        await _connection.ReceiveHeaderAsync(default);
        var e = await Assert.ThrowsAsync<IscsiProtocolException>(async () => await _connection.ReceiveDataAsync(new byte[64 * 1024], default));
        Assert.Equal("connection closed in the middle of a PDU: truncated data segment (1000 of 65536 bytes)", e.Message);
    }

    [Fact]
    public async Task Truncated_digest()
    {
        await EnableDigestsAsync(false, true);
        var wire = Frame(DataInHeader(8), new byte[8], false, true);
        await _peer.SendAsync(wire[..^2]);
        _peer.Shutdown(SocketShutdown.Send);
        await _connection.ReceiveHeaderAsync(default);
        var e = await Assert.ThrowsAsync<IscsiProtocolException>(async () => await _connection.ReceiveDataAsync(default, default));
        Assert.Contains("truncated PDU after its 8-byte data segment", e.Message);
    }

    [Fact]
    public async Task Close_between_pdus_is_a_transport_error()
    {
        await _peer.SendAsync(Frame(DataInHeader(0), [], false, false));
        _peer.Shutdown(SocketShutdown.Send);
        await _connection.ReceiveHeaderAsync(default);
        var e = await Assert.ThrowsAsync<IscsiTransportException>(async () => await _connection.ReceiveHeaderAsync(default));
        Assert.Equal("connection closed by the target", e.Message);
    }

    [Fact]
    public async Task Ahs_is_part_of_the_header()
    {
        var pdu = new ScsiCommandPdu { InitiatorTaskTag = 9, Cdb = new byte[32] };
        var header = new byte[pdu.HeaderLength];
        pdu.WriteHeader(header);
        await EnableDigestsAsync(true, false);
        await _peer.SendAsync(Frame(header, [], true, false));
        var received = await _connection.ReceiveHeaderAsync(default);
        Assert.Equal(header, received.Header.ToArray());
    }

    [Fact]
    public async Task Refused_connection()
    {
        var transport = new TcpIscsiTransport();
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)probe.LocalEndPoint!).Port; // bound, not listening
        var e = await Assert.ThrowsAsync<IscsiTransportException>(async () => await transport.ConnectAsync(new IscsiPortal("127.0.0.1", port), default));
        Assert.Equal($"cannot connect to 127.0.0.1:{port}: connection refused", e.Message);
    }

    /// <summary>Records the target memory of every read, to show where received bytes land.</summary>
    private sealed class RecordingStream(Stream inner) : Stream
    {
        public List<ArraySegment<byte>> Reads { get; } = [];
        public int Writes;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken);
            if (MemoryMarshal.TryGetArray<byte>(buffer, out var segment)) lock (Reads) Reads.Add(new ArraySegment<byte>(segment.Array!, segment.Offset, n));
            return n;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Writes);
            return inner.WriteAsync(buffer, cancellationToken);
        }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
