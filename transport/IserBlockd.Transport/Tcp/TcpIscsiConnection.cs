using System.Buffers;
using System.Runtime.CompilerServices;
using System.IO.Hashing;
using System.Net;
using System.Net.Sockets;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Primitives.Native;
using IserBlockd.Primitives.Splicing;

namespace IserBlockd.Transport.Tcp;

/// <summary>
/// PDU framing on a TCP byte stream: BHS, AHS, optional header digest, data segment padded to 4 bytes, optional
/// data digest (RFC 7143 §11.2). Headers and small segments go through a receive buffer; a data segment with a
/// destination (a Data-In for a task's buffer) is read from the socket straight into it. Sends are coalesced in a
/// buffer and flushed once per batch; large data segments are written from the caller's memory.
/// </summary>
public sealed class TcpIscsiConnection : IIscsiConnection
{
    private const int MaxHeaderLength = BasicHeaderSegment.Length + 255 * 4 + PduLayout.DigestLength;

    /// <summary>The longest data segment taken into the connection's own buffer before the full feature phase: the
    /// login exchange's own limit (RFC 7143 has 8192 during login; targets keep well within this).</summary>
    public const int LoginDataSegmentLimit = 64 * 1024;

    private readonly Stream _stream;
    private readonly TcpTransportOptions _options;
    private readonly byte[] _receive;
    private readonly byte[] _header = new byte[MaxHeaderLength];
    private readonly byte[] _send;
    private readonly Crc32 _receiveCrc = Crc32C.CreateIncremental();
    private readonly Crc32 _sendCrc = Crc32C.CreateIncremental();
    private static readonly byte[] Zeros = new byte[4];
    /// <summary>Data segments with no destination of their own land here (rented; grown up to <see cref="_dataLimit"/>).</summary>
    private byte[] _data = ArrayPool<byte>.Shared.Rent(IscsiKeys.DefaultMaxRecvDataSegmentLength);
    /// <summary>What we declared we receive (MaxRecvDataSegmentLength), or the login limit before that.</summary>
    private int _dataLimit = LoginDataSegmentLimit;
    private int _receiveStart;
    private int _receiveEnd;
    private int _sendLength;
    private int _pendingData;
    private bool _headerDigest;
    private bool _dataDigest;
    private int _disposed;
    /// <summary>Null when the stream is not a socket's (tests, fuzzing) or coalescing is off.</summary>
    private readonly ReceiveCoalescing? _coalescing;
    /// <summary>This socket among those the I/O thread polls at queue depth one (<see cref="TcpTransportOptions.LowDepthPoller"/>).</summary>
    private IDisposable? _pollWatch;
    /// <summary>The stream's socket, for splicing Data-In into a payload pipe; null when the stream is not a socket's.</summary>
    private readonly Socket? _socket;
    /// <summary>Null until the first Data-In that could be spliced looks (see <see cref="CanSplice"/>).</summary>
    private bool? _canSplice;
    private long _splicedDataBytes;

    public long SplicedDataBytes => Volatile.Read(ref _splicedDataBytes);
    /// <summary>The receive loop's last word: the answers owed are large READs (<see cref="ReceiveCoalescing.AreLarge"/>),
    /// so what a read at a PDU boundary takes of a data segment would go through the receive buffer and a second copy.</summary>
    private bool _largeAnswersOwed;

    public TcpIscsiConnection(Stream stream, EndPoint? localEndPoint, EndPoint? remoteEndPoint, TcpTransportOptions? options = null)
    {
        _stream = stream;
        _options = options ?? new TcpTransportOptions();
        _receive = new byte[Math.Max(_options.ReceiveBufferSize, MaxHeaderLength * 2)];
        _send = new byte[Math.Max(_options.SendBufferSize, MaxHeaderLength * 2)];
        LocalEndPoint = localEndPoint;
        RemoteEndPoint = remoteEndPoint;
        _socket = (stream as NetworkStream)?.Socket;
        if (_socket != null && _options.ReceiveCoalescingMinAnswers > 0)
            _coalescing = new ReceiveCoalescing(_socket, _options, _receive.Length);
    }

    /// <summary>Whether a receive is held for several answers now (for tests).</summary>
    internal bool HoldingReceive => _coalescing?.Holding ?? false;

    public void ExpectAnswers(int answers, long bytes)
    {
        _largeAnswersOwed = ReceiveCoalescing.AreLarge(answers, bytes);
        _coalescing?.Expect(answers, bytes);
    }

    /// <summary>What a read at a PDU boundary takes while large answers are owed: the header and its digest, nothing of
    /// the data segment behind it, which goes straight into its task's buffer or pipe (an AHS is read after).</summary>
    private int BoundaryReadWhileLargeAnswersOwed => BasicHeaderSegment.Length + (_headerDigest ? PduLayout.DigestLength : 0);

    public IscsiTransportCapabilities Capabilities => IscsiTransportCapabilities.None;

    public ITransportLoginKeys? LoginKeys => null;

    public EndPoint? LocalEndPoint { get; }

    public EndPoint? RemoteEndPoint { get; }

    public bool HeaderDigest => _headerDigest;

    public bool DataDigest => _dataDigest;

    public ValueTask StartFullFeaturePhaseAsync(FullFeaturePhaseContext context, CancellationToken cancellationToken)
    {
        // Digests cover every PDU after the final Login Response (RFC 7143 §13.1).
        _headerDigest = context.Parameters.HeaderDigest == DigestType.Crc32C;
        _dataDigest = context.Parameters.DataDigest == DigestType.Crc32C;
        _dataLimit = Math.Max(context.Parameters.MaxRecvDataSegmentLength, IscsiKeys.DefaultMaxRecvDataSegmentLength);
        // From here on answers to I/O come in on this socket: the I/O thread polls it at queue depth one.
        if (_socket != null && _pollWatch == null)
        {
            _pollWatch = _options.LowDepthPoller.Watch(_socket.SafeHandle);
            if (Volatile.Read(ref _disposed) != 0) _pollWatch.Dispose(); // disposed meanwhile: no stale descriptor
        }
        return ValueTask.CompletedTask;
    }

    // ---------------------------------------------------------------- receive

    private int Buffered => _receiveEnd - _receiveStart;

    public bool HasBufferedHeader =>
        _pendingData == 0 && Buffered >= BasicHeaderSegment.Length
        && Buffered >= BasicHeaderSegment.Length + _receive[_receiveStart + 4] * 4 + (_headerDigest ? PduLayout.DigestLength : 0);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<InboundPdu> ReceiveHeaderAsync(CancellationToken cancellationToken)
    {
        if (_pendingData > 0) await SkipDataAsync(cancellationToken).ConfigureAwait(false);
        await FillAsync(BasicHeaderSegment.Length, atPduBoundary: true, cancellationToken).ConfigureAwait(false);
        var ahs = _receive[_receiveStart + 4] * 4;
        var headerLength = BasicHeaderSegment.Length + ahs;
        var total = headerLength + (_headerDigest ? PduLayout.DigestLength : 0);
        await FillAsync(total, atPduBoundary: false, cancellationToken).ConfigureAwait(false);
        var source = _receive.AsSpan(_receiveStart, total);
        if (_headerDigest)
        {
            var computed = Crc32C.Compute(source[..headerLength]);
            var received = Crc32C.ReadDigest(source[headerLength..]);
            if (computed != received)
                throw new IscsiDigestException($"header digest mismatch on a {BasicHeaderSegment.GetOpcode(source)} PDU: computed 0x{computed:x8}, received 0x{received:x8}");
        }
        source[..headerLength].CopyTo(_header);
        _receiveStart += total;
        _pendingData = BasicHeaderSegment.GetDataSegmentLength(_header);
        return new InboundPdu(_header.AsMemory(0, headerLength));
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ReadOnlyMemory<byte>> ReceiveDataAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        var length = _pendingData;
        _pendingData = 0;
        if (length == 0) return ReadOnlyMemory<byte>.Empty;
        Memory<byte> target;
        if (destination.IsEmpty)
        {
            // The length is the target's word (up to 16 MiB): checked before any memory is taken for it.
            if (length > _dataLimit)
                throw new IscsiProtocolException($"{BasicHeaderSegment.GetOpcode(_header)} PDU with a {length}-byte data segment exceeds the {_dataLimit} bytes we receive");
            if (_data.Length < length)
            {
                ArrayPool<byte>.Shared.Return(_data);
                _data = ArrayPool<byte>.Shared.Rent(length);
            }
            target = _data.AsMemory(0, length);
        }
        else
        {
            if (destination.Length != length)
                throw new ArgumentException($"destination is {destination.Length} bytes, the data segment {length}", nameof(destination));
            target = destination;
        }
        var trailer = PduLayout.Padding(length) + (_dataDigest ? PduLayout.DigestLength : 0);

        // Into a payload pipe (a READ whose reply leaves by splice): the socket's pages move on, nothing is copied
        // here. What the pipe does not take goes into the buffer, after what the pipe holds.
        var filled = 0;
        if (!destination.IsEmpty && PipeFor(destination, out var owner, out var start) is { } pipe)
        {
            filled = await SpliceIntoAsync(pipe, length, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _splicedDataBytes, _splicedDataBytes + filled);
            if (filled < length) pipe.MoveIntoBuffer(owner!.GetSpan());
        }

        // What is already buffered is copied; a large remainder is read from the socket straight into place.
        var copied = Math.Min(Buffered, length - filled);
        _receive.AsSpan(_receiveStart, copied).CopyTo(target.Span[filled..]);
        _receiveStart += copied;
        filled += copied;
        var remaining = length - filled;
        if (remaining > 0 && remaining + trailer <= _receive.Length / 2)
        {
            await FillAsync(remaining, atPduBoundary: false, cancellationToken, length).ConfigureAwait(false);
            _receive.AsSpan(_receiveStart, remaining).CopyTo(target.Span[filled..]);
            _receiveStart += remaining;
        }
        else if (remaining > 0)
        {
            _coalescing?.Release();
            while (filled < length)
            {
                var n = await ReadAsync(target[filled..], cancellationToken).ConfigureAwait(false);
                if (n == 0) throw Truncated($"data segment ({filled} of {length} bytes)");
                filled += n;
            }
        }

        await FillAsync(trailer, atPduBoundary: false, cancellationToken, length).ConfigureAwait(false);
        if (_dataDigest)
        {
            var padding = PduLayout.Padding(length);
            _receiveCrc.Reset();
            _receiveCrc.Append(target.Span);
            _receiveCrc.Append(_receive.AsSpan(_receiveStart, padding));
            var computed = _receiveCrc.GetCurrentHashAsUInt32();
            var received = Crc32C.ReadDigest(_receive.AsSpan(_receiveStart + padding, PduLayout.DigestLength));
            if (computed != received)
                throw new IscsiDigestException($"data digest mismatch on a {length}-byte {BasicHeaderSegment.GetOpcode(_header)} data segment: computed 0x{computed:x8}, received 0x{received:x8}");
        }
        _receiveStart += trailer;
        return target;
    }

    /// <summary>The pipe a data segment for <paramref name="destination"/> goes into, or null: only a socket's stream,
    /// without data digests (the bytes never pass through here to be summed), and only where the segment continues
    /// what the pipe holds. A segment that lands on bytes the pipe holds (a retried command) first moves them into
    /// the buffer, where a plain receive would have overwritten them.</summary>
    private PayloadPipe? PipeFor(Memory<byte> destination, out MemoryManager<byte>? owner, out int start)
    {
        start = 0;
        owner = null;
        if (_dataDigest || !CanSplice) return null;
        var pipe = PayloadPipe.Behind(destination, out owner, out start);
        if (pipe == null) return null;
        if (start < pipe.End) pipe.MoveIntoBuffer(owner!.GetSpan());
        return start == pipe.End && pipe.Start == 0 ? pipe : null;
    }

    /// <summary>Whether the socket's descriptor is non-blocking (the runtime's engine makes it so), so that a splice
    /// from it never stalls the receive loop. Looked at once.</summary>
    private bool CanSplice => _canSplice ??= _socket != null && IsNonBlocking();

    private bool IsNonBlocking()
    {
        using var fd = Lease();
        return fd.IsNonBlocking;
    }

    /// <summary>The socket's descriptor, held open for one system call; a socket closed meanwhile is a closed connection.</summary>
    private DescriptorLease Lease()
    {
        try
        {
            return new DescriptorLease(_socket!.SafeHandle);
        }
        catch (ObjectDisposedException e)
        {
            throw new IscsiTransportException("connection closed", e);
        }
    }

    /// <summary>Moves the data segment from the socket into <paramref name="pipe"/>: first what the receive buffer
    /// already holds (copied), then the rest by splice. Returns how much went in; less than <paramref name="length"/>
    /// only when the pipe is full.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> SpliceIntoAsync(PayloadPipe pipe, int length, CancellationToken cancellationToken)
    {
        var filled = 0;
        var buffered = Math.Min(Buffered, length);
        if (buffered > 0)
        {
            filled = pipe.Append(_receive.AsSpan(_receiveStart, buffered));
            _receiveStart += filled;
            if (filled < buffered) return filled;
        }
        while (filled < length)
        {
            // Splice takes what is there whatever SO_RCVLOWAT says; a hold is released only before waiting for the rest.
            var moved = SpliceFromSocket(pipe, length - filled);
            if (moved > 0)
            {
                filled += moved;
                continue;
            }
            if (moved == 0) throw Truncated($"data segment ({filled} of {length} bytes)");
            // Nothing moved: the pipe is full (the socket has bytes), or the socket is empty (wait for it).
            if (BytesWaiting() > 0) return filled;
            _coalescing?.Release();
            await ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
        }
        return filled;
    }

    private int SpliceFromSocket(PayloadPipe pipe, int length)
    {
        using var fd = Lease();
        try
        {
            return pipe.SpliceFrom(fd.Fd, length);
        }
        catch (IOException e)
        {
            throw new IscsiTransportException($"receive failed: {e.Message}", e);
        }
    }

    /// <summary>Bytes the socket holds for us to read (FIONREAD).</summary>
    private int BytesWaiting()
    {
        using var fd = Lease();
        return fd.BytesToRead;
    }

    /// <summary>Reads past a data segment the caller did not take (and its padding and digest), through the receive
    /// buffer: nothing is allocated for it, whatever length the header claimed.</summary>
    private async ValueTask SkipDataAsync(CancellationToken cancellationToken)
    {
        var length = _pendingData;
        _pendingData = 0;
        var remaining = length + PduLayout.Padding(length) + (_dataDigest ? PduLayout.DigestLength : 0);
        while (true)
        {
            var take = Math.Min(Buffered, remaining);
            _receiveStart += take;
            remaining -= take;
            if (remaining == 0) return;
            await FillAsync(Math.Min(remaining, _receive.Length), atPduBoundary: false, cancellationToken, length).ConfigureAwait(false);
        }
    }

    /// <summary>Makes at least <paramref name="count"/> bytes available in the receive buffer.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FillAsync(int count, bool atPduBoundary, CancellationToken cancellationToken, int segmentLength = 0)
    {
        if (Buffered >= count) return;
        if (_receiveStart + count > _receive.Length)
        {
            Buffer.BlockCopy(_receive, _receiveStart, _receive, 0, Buffered);
            _receiveEnd -= _receiveStart;
            _receiveStart = 0;
        }
        while (Buffered < count)
        {
            // Waiting for the next PDU with many answers owed: one wake-up for several of them. Inside a PDU, for
            // no more than its rest.
            if (atPduBoundary) _coalescing?.Hold(Buffered);
            else _coalescing?.Release();
            var room = _receive.AsMemory(_receiveEnd);
            if (atPduBoundary && _largeAnswersOwed)
                room = room[..Math.Min(room.Length, Math.Max(count - Buffered, BoundaryReadWhileLargeAnswersOwed))];
            var n = await ReadAsync(room, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (atPduBoundary && Buffered == 0) throw new IscsiTransportException("connection closed by the target");
                throw Truncated(segmentLength > 0
                    ? $"PDU after its {segmentLength}-byte data segment ({Buffered} of {count} bytes of padding/digest)"
                    : $"PDU header ({Buffered} of {count} bytes)");
            }
            _receiveEnd += n;
        }
    }

    private static IscsiProtocolException Truncated(string what) => new($"connection closed in the middle of a PDU: truncated {what}");

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        try
        {
            return await _stream.ReadAsync(destination, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e) when (e.InnerException is SocketException s)
        {
            throw new IscsiTransportException($"receive failed: {TcpIscsiTransport.Describe(s)}", e);
        }
        catch (IOException e)
        {
            throw new IscsiTransportException($"receive failed: {e.Message}", e);
        }
        catch (ObjectDisposedException e)
        {
            throw new IscsiTransportException("connection closed", e);
        }
    }

    // ---------------------------------------------------------------- send

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SendAsync(OutboundPdu pdu, CancellationToken cancellationToken)
    {
        var header = pdu.Header;
        var data = pdu.Data;
        var headerBytes = header.Length + (_headerDigest ? PduLayout.DigestLength : 0);
        var trailer = data.Length == 0 ? 0 : PduLayout.Padding(data.Length) + (_dataDigest ? PduLayout.DigestLength : 0);
        var copyData = data.Length <= _options.CopyThreshold;
        var needed = headerBytes + (copyData ? data.Length + trailer : 0);
        if (_sendLength + needed > _send.Length) await FlushBufferAsync(cancellationToken).ConfigureAwait(false);

        header.Span.CopyTo(_send.AsSpan(_sendLength));
        if (_headerDigest) Crc32C.WriteDigest(_send.AsSpan(_sendLength + header.Length), Crc32C.Compute(header.Span));
        _sendLength += headerBytes;
        if (data.Length == 0) return;

        if (copyData)
        {
            data.Span.CopyTo(_send.AsSpan(_sendLength));
            _sendLength += data.Length;
        }
        else
        {
            await FlushBufferAsync(cancellationToken).ConfigureAwait(false);
            await WriteAsync(data, cancellationToken).ConfigureAwait(false);
        }
        var padding = PduLayout.Padding(data.Length);
        _send.AsSpan(_sendLength, padding).Clear();
        _sendLength += padding;
        if (_dataDigest)
        {
            _sendCrc.Reset();
            _sendCrc.Append(data.Span);
            _sendCrc.Append(Zeros.AsSpan(0, padding));
            Crc32C.WriteDigest(_send.AsSpan(_sendLength), _sendCrc.GetCurrentHashAsUInt32());
            _sendLength += PduLayout.DigestLength;
        }
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken) => FlushBufferAsync(cancellationToken);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FlushBufferAsync(CancellationToken cancellationToken)
    {
        if (_sendLength == 0) return;
        var length = _sendLength;
        _sendLength = 0;
        await WriteAsync(_send.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        try
        {
            await _stream.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e) when (e.InnerException is SocketException s)
        {
            throw new IscsiTransportException($"send failed: {TcpIscsiTransport.Describe(s)}", e);
        }
        catch (IOException e)
        {
            throw new IscsiTransportException($"send failed: {e.Message}", e);
        }
        catch (ObjectDisposedException e)
        {
            throw new IscsiTransportException("connection closed", e);
        }
    }

    public void ReleaseTask(uint initiatorTaskTag)
    {
        // TCP keeps no per-task state: data is copied to the socket during SendAsync.
    }

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return ValueTask.CompletedTask;
        _coalescing?.Dispose();
        _pollWatch?.Dispose();
        // _data is not returned to the pool: a receive may still be copying into it (the GC takes it).
        return _stream.DisposeAsync();
    }
}
