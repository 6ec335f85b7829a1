using System.Buffers;
using System.Net.Sockets;
using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Nbd.Transport;
using Microsoft.Extensions.Logging;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// The transmission phase of one NBD connection.
/// </summary>
/// <remarks>
/// <para>One reader loop parses requests out of a receive buffer and starts them on the device without
/// waiting; each request's reply is queued when its device operation completes, in whatever order that
/// happens. One writer loop drains the queue, gathering many replies (and small READ payloads) into
/// one send; large payloads go out straight from the device buffer.</para>
/// <para>While the reader works through the requests of one receive it holds the writer back, and lets
/// it run (inline, on the reader's thread) just before it waits for the socket again: a burst of
/// pipelined requests costs one receive and one send, not one of each per request.</para>
/// <para>Nothing here allocates per request: requests are pooled contexts, payloads are the device's
/// pooled buffers, and both loops are long-lived async methods whose awaits reuse one state machine.</para>
/// </remarks>
internal sealed class NbdConnection
{
    private static readonly ReadOnlyMemory<byte> UnknownCommand = "unknown command"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> UnsupportedFlags = "command flags not supported for this command or export"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> ReadOnlyExport = "the export is read-only"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> BeyondEnd = "request extends beyond the end of the export"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> Unaligned = "offset or length not aligned to the minimum block size"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> TooLong = "length exceeds the maximum block size"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> FlushNotSupported = "the export does not support flush"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> FlushWithRange = "flush requests must have zero offset and length"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> TrimNotSupported = "the export does not support trim"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> NoBufferAvailable = "no buffer for the payload"u8.ToArray();
    private const int MaxErrorMessageChars = 512;

    private readonly INbdTransport _transport;
    private readonly NbdExport _export;
    private readonly IBlockDevice _device;
    private readonly NbdServerOptions _options;
    private readonly ILogger _logger;
    private readonly string _peer;
    private readonly bool _structuredReplies;
    private readonly NbdTransmissionFlags _flags;
    private readonly NbdBlockSizeConstraints _limits;
    private readonly ulong _size;
    private readonly bool _deviceFua;
    private readonly bool _deviceWriteZeroes;
    private readonly int _copyThreshold;

    private readonly byte[] _receiveBuffer;
    private int _receiveStart;
    private int _receiveEnd;
    private readonly byte[] _sendBuffer;

    private readonly NbdRequestContext[] _freeContexts;
    private int _freeContextCount;

    private readonly object _replyLock = new();
    private NbdRequestContext? _replyHead;
    private NbdRequestContext? _replyTail;
    private bool _writerRunning;
    private bool _readerBatching;
    private volatile bool _writerStopping;
    private readonly AsyncSignal _writerWake = new();
    private volatile bool _broken;

    private int _inFlight;
    private int _inFlightWaitThreshold;
    private readonly AsyncSignal _inFlightBelowThreshold = new();
    private string _closeReason = "client closed the connection";
    private Timer? _shutdownDeadline;

    /// <remarks>TRIM and WRITE_ZEROES are not held to the maximum block size, which bounds payloads only
    /// (nbdcopy zeroes holes 128 MiB at a time): they carry none, and the device splits them.</remarks>
    public NbdConnection(INbdTransport transport, NbdExport export, bool structuredReplies,
        NbdServerOptions options, ILogger logger)
    {
        _transport = transport;
        _export = export;
        _device = export.Device;
        _options = options;
        _logger = logger;
        _peer = transport.RemoteDescription;
        _structuredReplies = structuredReplies;
        _flags = export.GetTransmissionFlags(structuredReplies);
        _limits = export.BlockSizes;
        _size = (ulong)_device.Geometry.Size;
        _deviceFua = (_device.Features & BlockDeviceFeatures.Fua) != 0;
        _deviceWriteZeroes = (_device.Features & BlockDeviceFeatures.WriteZeroes) != 0;
        _copyThreshold = options.CopyThreshold;
        _receiveBuffer = GC.AllocateUninitializedArray<byte>(options.ReceiveBufferSize, pinned: true);
        _sendBuffer = GC.AllocateUninitializedArray<byte>(options.SendBufferSize, pinned: true);
        _freeContexts = new NbdRequestContext[options.MaxRequestsInFlight];
    }

    public NbdTransmissionFlags Flags => _flags;

    /// <summary>Serves requests until the client disconnects (or breaks the protocol, or
    /// <paramref name="cancellationToken"/> stops it), then waits for requests still at the device,
    /// delivers their replies and closes the transport.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        NbdLog.TransmissionStarted(_logger, _peer, _export, _structuredReplies, _flags);
        var writer = WriteLoopAsync();
        // Stopping is a shutdown of our receive side: the reader sees end-of-stream and drains normally.
        using (cancellationToken.UnsafeRegister(static state => ((NbdConnection)state!).StopReceiving(), this))
        {
            try
            {
                await ReadLoopAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                NbdLog.ConnectionFailed(_logger, e, _peer);
                _closeReason = "internal error: " + e.Message;
                Break();
            }
        }
        EndBatch();
        await WaitForInFlightBelowAsync(1).ConfigureAwait(false);
        StopWriter();
        await writer.ConfigureAwait(false);
        if (_shutdownDeadline != null) await _shutdownDeadline.DisposeAsync().ConfigureAwait(false);
        await _transport.DisposeAsync().ConfigureAwait(false);
        NbdLog.Disconnected(_logger, _peer, _export, _closeReason);
    }

    private void StopReceiving()
    {
        _closeReason = "server shutting down";
        _transport.ShutdownReceive();
        // Replies that cannot be delivered in time (the client stopped reading) are given up.
        _shutdownDeadline = new Timer(static state => ((NbdConnection)state!).Break(), this, _options.ShutdownTimeout, Timeout.InfiniteTimeSpan);
    }

    private void Break()
    {
        _broken = true;
        _transport.Abort();
    }

    // ---------------------------------------------------------------- reader

    /// <summary>
    /// Parses requests out of the receive buffer and starts each on the device. Everything this
    /// connection receives passes through the single await below, so the loop's state machine is
    /// allocated once per connection, not per request.
    /// </summary>
    private async Task ReadLoopAsync()
    {
        Volatile.Write(ref _readerBatching, true);
        NbdRequestContext? writing = null; // a WRITE whose payload is still arriving
        var writeFilled = 0;
        NbdRequestContext? refused = null; // a refused WRITE whose payload is being skipped
        long toSkip = 0;
        while (true)
        {
            Memory<byte> target;
            var intoReceiveBuffer = true;
            if (writing != null)
            {
                var payload = writing.Buffer!.Memory;
                var take = Math.Min(_receiveEnd - _receiveStart, payload.Length - writeFilled);
                _receiveBuffer.AsSpan(_receiveStart, take).CopyTo(payload.Span[writeFilled..]);
                _receiveStart += take;
                writeFilled += take;
                if (writeFilled == payload.Length)
                {
                    var complete = writing;
                    writing = null;
                    complete.Execute();
                    continue;
                }
                if (payload.Length - writeFilled <= _copyThreshold)
                {
                    // A small tail: receiving it through our buffer likely brings the next requests along.
                    target = FreeReceiveSpace();
                }
                else
                {
                    // A large payload goes straight into the device's buffer.
                    target = payload[writeFilled..];
                    intoReceiveBuffer = false;
                }
            }
            else if (refused != null)
            {
                var take = (int)Math.Min(_receiveEnd - _receiveStart, toSkip);
                _receiveStart += take;
                toSkip -= take;
                if (toSkip == 0)
                {
                    OnRequestCompleted(refused);
                    refused = null;
                    continue;
                }
                _receiveStart = _receiveEnd = 0;
                target = _receiveBuffer;
            }
            else if (_receiveEnd - _receiveStart >= NbdRequest.Size)
            {
                if (!NbdRequest.TryRead(_receiveBuffer.AsSpan(_receiveStart, NbdRequest.Size), out var request))
                {
                    var magic = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(_receiveBuffer.AsSpan(_receiveStart));
                    NbdLog.BadRequestMagic(_logger, _peer, magic);
                    _closeReason = "protocol violation (bad request magic)";
                    Break();
                    return;
                }
                _receiveStart += NbdRequest.Size;
                if (request.Command == NbdCommand.Disconnect)
                {
                    _closeReason = "client sent NBD_CMD_DISC";
                    return;
                }

                if (Volatile.Read(ref _inFlight) >= _options.MaxRequestsInFlight)
                {
                    var slot = WaitForInFlightBelowAsync(_options.MaxRequestsInFlight);
                    if (!slot.IsCompleted) EndBatch();
                    await slot.ConfigureAwait(false);
                    Volatile.Write(ref _readerBatching, true);
                }
                Interlocked.Increment(ref _inFlight);
                var context = RentContext();
                context.Initialize(request);

                var error = Validate(in request, out var reason);
                if (error == 0 && request.Length > 0 && request.Command is NbdCommand.Read or NbdCommand.Write)
                {
                    var rent = RentBuffer((int)request.Length);
                    if (!rent.IsCompleted) EndBatch(); // the pool is dry: let replies (and their buffers) go
                    try
                    {
                        context.Buffer = await rent.ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        // A provider that cannot serve this size (or fails) costs this request, not the connection.
                        NbdLog.DeviceFailure(_logger, e, _export, request.Command, (long)request.Offset, request.Length);
                        error = BlockError.OutOfMemory;
                        reason = NoBufferAvailable;
                    }
                    Volatile.Write(ref _readerBatching, true);
                }

                if (error != 0)
                {
                    if (_logger.IsEnabled(LogLevel.Debug))
                        NbdLog.RequestRefused(_logger, _peer, request.Command, request.Offset, request.Length, request.Flags, error,
                            System.Text.Encoding.UTF8.GetString(reason.Span));
                    context.Fail(error, reason);
                    if (request.Command == NbdCommand.Write && request.Length > 0)
                    {
                        // The payload follows regardless; skip it to stay in step, unless it is absurd.
                        if (request.Length > _options.MaxDiscardedPayload)
                        {
                            NbdLog.OversizedPayload(_logger, _peer, request.Length, _options.MaxDiscardedPayload);
                            _closeReason = "protocol violation (oversized WRITE payload)";
                            ReleaseUnanswered(context);
                            Break();
                            return;
                        }
                        refused = context;
                        toSkip = request.Length;
                    }
                    else
                    {
                        OnRequestCompleted(context);
                    }
                }
                else if (request.Command == NbdCommand.Write && request.Length > 0)
                {
                    writing = context;
                    writeFilled = 0;
                }
                else
                {
                    context.Execute();
                    if (request.Command == NbdCommand.Read && request.Length > _copyThreshold)
                    {
                        // Start sending a large read at once rather than after the whole batch: the
                        // client consumes this payload while the next request is being read.
                        EndBatch();
                        Volatile.Write(ref _readerBatching, true);
                    }
                }
                continue;
            }
            else
            {
                target = FreeReceiveSpace();
            }

            EndBatch();
            int received;
            try
            {
                received = await _transport.ReceiveAsync(target).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
            {
                if (!_broken) _closeReason = "connection lost: " + e.Message;
                received = 0;
            }
            Volatile.Write(ref _readerBatching, true);
            if (received <= 0)
            {
                if (writing != null)
                {
                    NbdLog.VanishedMidWrite(_logger, _peer, writeFilled + (_receiveEnd - _receiveStart), writing.Length, writing.Offset);
                    _closeReason = "client closed the connection in the middle of a WRITE payload";
                    ReleaseUnanswered(writing);
                }
                else if (refused != null)
                {
                    _closeReason = "client closed the connection in the middle of a WRITE payload";
                    ReleaseUnanswered(refused);
                }
                else if (_receiveEnd != _receiveStart)
                {
                    _closeReason = "client closed the connection in the middle of a request header";
                }
                return;
            }
            if (intoReceiveBuffer) _receiveEnd += received;
            else writeFilled += received;
        }
    }

    /// <summary>Moves unparsed bytes to the front so the free space is in one piece and each receive
    /// can take in a whole burst of requests.</summary>
    private Memory<byte> FreeReceiveSpace()
    {
        if (_receiveStart == _receiveEnd)
        {
            _receiveStart = _receiveEnd = 0;
        }
        else if (_receiveStart > 0)
        {
            Buffer.BlockCopy(_receiveBuffer, _receiveStart, _receiveBuffer, 0, _receiveEnd - _receiveStart);
            _receiveEnd -= _receiveStart;
            _receiveStart = 0;
        }
        return _receiveBuffer.AsMemory(_receiveEnd);
    }

    private ValueTask<IMemoryOwner<byte>> RentBuffer(int length)
    {
        try
        {
            return _device.Buffers.RentAsync(length, CancellationToken.None);
        }
        catch (Exception e)
        {
            return ValueTask.FromException<IMemoryOwner<byte>>(e);
        }
    }

    /// <summary>Checks a request against the negotiated flags and the export's size and block sizes
    /// (error values as doc/proto.md, "Error values", prescribes).</summary>
    private BlockError Validate(in NbdRequest request, out ReadOnlyMemory<byte> reason)
    {
        var fua = (_flags & NbdTransmissionFlags.SendFua) != 0 ? NbdCommandFlags.Fua : NbdCommandFlags.None;
        NbdCommandFlags allowed;
        bool writes, hasRange, checkMaximum;
        BlockError beyondEnd;
        switch (request.Command)
        {
            case NbdCommand.Read:
                allowed = fua | (_structuredReplies ? NbdCommandFlags.DontFragment : 0);
                writes = false; hasRange = true; checkMaximum = true; beyondEnd = BlockError.InvalidArgument;
                break;
            case NbdCommand.Write:
                allowed = fua;
                writes = true; hasRange = true; checkMaximum = true; beyondEnd = BlockError.NoSpace;
                break;
            case NbdCommand.WriteZeroes:
                allowed = fua | NbdCommandFlags.NoHole;
                writes = true; hasRange = true; checkMaximum = false; beyondEnd = BlockError.NoSpace;
                break;
            case NbdCommand.Trim:
                allowed = fua;
                writes = true; hasRange = true; checkMaximum = false; beyondEnd = BlockError.InvalidArgument;
                break;
            case NbdCommand.Flush:
                allowed = fua;
                writes = false; hasRange = false; checkMaximum = false; beyondEnd = BlockError.InvalidArgument;
                break;
            default:
                reason = UnknownCommand;
                return BlockError.InvalidArgument;
        }
        if ((request.Flags & ~allowed) != 0)
        {
            reason = UnsupportedFlags;
            return BlockError.InvalidArgument;
        }
        if (writes && _export.IsReadOnly)
        {
            reason = ReadOnlyExport;
            return BlockError.PermissionDenied;
        }
        if (request.Command == NbdCommand.Flush)
        {
            if ((_flags & NbdTransmissionFlags.SendFlush) == 0)
            {
                reason = FlushNotSupported;
                return BlockError.InvalidArgument;
            }
            if (request.Offset != 0 || request.Length != 0)
            {
                reason = FlushWithRange;
                return BlockError.InvalidArgument;
            }
        }
        if (request.Command == NbdCommand.Trim && (_flags & NbdTransmissionFlags.SendTrim) == 0)
        {
            reason = TrimNotSupported;
            return BlockError.InvalidArgument;
        }
        if (hasRange)
        {
            if (request.Offset > _size || request.Length > _size - request.Offset)
            {
                reason = BeyondEnd;
                return beyondEnd;
            }
            var mask = _limits.Minimum - 1;
            if ((request.Offset & mask) != 0 || (request.Length & mask) != 0)
            {
                reason = Unaligned;
                return BlockError.InvalidArgument;
            }
            if (checkMaximum && request.Length > _limits.Maximum)
            {
                reason = TooLong;
                return BlockError.InvalidArgument;
            }
        }
        reason = default;
        return 0;
    }

    // ---------------------------------------------------------------- device operations

    /// <summary>Starts stage <paramref name="stage"/> of a request; false when it has no more stages.</summary>
    internal bool TryStartStage(NbdRequestContext context, int stage, out ValueTask operation)
    {
        operation = default;
        switch (context.Command)
        {
            case NbdCommand.Read when stage == 0 && context.Length > 0:
                operation = _device.ReadAsync(context.Offset, context.Buffer!.Memory, CancellationToken.None);
                return true;
            case NbdCommand.Write when stage == 0 && context.Length > 0:
                operation = _device.WriteAsync(context.Offset, context.Buffer!.Memory, context.IsFua && _deviceFua, CancellationToken.None);
                return true;
            case NbdCommand.Write when stage == 1 && context.IsFua && !_deviceFua:
                operation = _device.FlushAsync(CancellationToken.None);
                return true;
            case NbdCommand.Flush when stage == 0:
                operation = _device.FlushAsync(CancellationToken.None);
                return true;
            case NbdCommand.Trim when stage == 0 && context.Length > 0:
                operation = _device.TrimAsync(context.Offset, context.Length, CancellationToken.None);
                return true;
            case NbdCommand.Trim when stage == 1 && context.IsFua:
                operation = _device.FlushAsync(CancellationToken.None);
                return true;
            case NbdCommand.WriteZeroes when stage == 0 && context.Length > 0:
                var mayUnmap = (context.Flags & NbdCommandFlags.NoHole) == 0;
                operation = _deviceWriteZeroes
                    ? _device.WriteZeroesAsync(context.Offset, context.Length, mayUnmap, context.IsFua && _deviceFua, CancellationToken.None)
                    : WriteZeroesWithWritesAsync(context.Offset, context.Length, context.IsFua && _deviceFua);
                return true;
            case NbdCommand.WriteZeroes when stage == 1 && context.IsFua && !_deviceFua:
                operation = _device.FlushAsync(CancellationToken.None);
                return true;
            default:
                return false;
        }
    }

    /// <summary>WRITE_ZEROES for a device without it: ordinary writes from one zeroed buffer.</summary>
    private async ValueTask WriteZeroesWithWritesAsync(long offset, long length, bool fua)
    {
        var chunk = (int)Math.Min(length, Math.Min(_limits.Maximum, 1u << 20));
        using var zeroes = await _device.Buffers.RentAsync(chunk, CancellationToken.None).ConfigureAwait(false);
        zeroes.Memory.Span.Clear();
        while (length > 0)
        {
            var count = (int)Math.Min(length, chunk);
            await _device.WriteAsync(offset, zeroes.Memory[..count], fua, CancellationToken.None).ConfigureAwait(false);
            offset += count;
            length -= count;
        }
    }

    internal void OnOperationFailed(NbdRequestContext context, Exception exception)
    {
        switch (exception)
        {
            case BlockDeviceException device:
                context.Fail(device.Error, EncodeMessage(device.Message));
                break;
            case OperationCanceledException:
                context.Fail(BlockError.Shutdown, EncodeMessage("the operation was cancelled"));
                break;
            default:
                NbdLog.DeviceFailure(_logger, exception, _export, context.Command, context.Offset, context.Length);
                context.Fail(BlockError.IoError, EncodeMessage(exception.Message));
                break;
        }
    }

    private static ReadOnlyMemory<byte> EncodeMessage(string message) =>
        System.Text.Encoding.UTF8.GetBytes(message.Length > MaxErrorMessageChars ? message[..MaxErrorMessageChars] : message);

    // ---------------------------------------------------------------- replies

    /// <summary>Queues a finished request's reply; wakes the writer unless it is already busy or the
    /// reader will wake it at the end of its batch.</summary>
    internal void OnRequestCompleted(NbdRequestContext context)
    {
        var wake = false;
        lock (_replyLock)
        {
            if (_replyTail == null) _replyHead = context;
            else _replyTail.Next = context;
            _replyTail = context;
            if (!_writerRunning && !_readerBatching)
            {
                _writerRunning = true;
                wake = true;
            }
        }
        if (wake) _writerWake.Set();
    }

    /// <summary>The reader is about to wait: let the writer send what the batch produced.</summary>
    private void EndBatch()
    {
        var wake = false;
        lock (_replyLock)
        {
            _readerBatching = false;
            if (_replyHead != null && !_writerRunning)
            {
                _writerRunning = true;
                wake = true;
            }
        }
        if (wake) _writerWake.Set();
    }

    private void StopWriter()
    {
        _writerStopping = true;
        var wake = false;
        lock (_replyLock)
        {
            if (!_writerRunning)
            {
                _writerRunning = true;
                wake = true;
            }
        }
        if (wake) _writerWake.Set();
    }

    /// <summary>
    /// Sends queued replies: headers and small READ payloads are gathered in the send buffer and go out
    /// together; a large payload follows its header straight from the device buffer. All sends pass
    /// through one await, so this loop, like the reader, allocates nothing per request.
    /// </summary>
    private async Task WriteLoopAsync()
    {
        var buffer = _sendBuffer;
        while (true)
        {
            await _writerWake.WaitAsync().ConfigureAwait(false);
            while (true)
            {
                NbdRequestContext? current;
                lock (_replyLock)
                {
                    current = _replyHead;
                    _replyHead = _replyTail = null;
                    if (current == null)
                    {
                        _writerRunning = false;
                        break;
                    }
                }

                var used = 0;
                ReadOnlyMemory<byte> large = default;
                NbdRequestContext? largeOwner = null;
                while (true)
                {
                    var mustSend = false;
                    while (current != null && !mustSend)
                    {
                        var context = current;
                        if (_broken)
                        {
                            current = context.Next;
                            Release(context);
                            continue;
                        }
                        var appended = AppendReply(context, buffer.AsSpan(used), out var payload);
                        if (appended == 0) break; // full: send what is gathered, then come back for this one
                        current = context.Next;
                        if (appended < 0)
                        {
                            Release(context);
                            continue;
                        }
                        used += appended;
                        if (payload.IsEmpty)
                        {
                            Release(context);
                        }
                        else
                        {
                            large = payload;
                            largeOwner = context;
                            mustSend = true;
                        }
                    }
                    if (used == 0 && largeOwner == null) break;

                    var data = (ReadOnlyMemory<byte>)buffer.AsMemory(0, used);
                    while (true)
                    {
                        while (!data.IsEmpty && !_broken)
                        {
                            try
                            {
                                var sent = await _transport.SendAsync(data).ConfigureAwait(false);
                                if (sent <= 0) throw new IOException("the transport accepted no bytes");
                                data = data[sent..];
                            }
                            catch (Exception e)
                            {
                                OnSendFailed(e);
                            }
                        }
                        if (large.IsEmpty) break;
                        data = large;
                        large = default;
                    }
                    used = 0;
                    if (largeOwner != null)
                    {
                        Release(largeOwner);
                        largeOwner = null;
                    }
                }
            }
            if (_writerStopping) return;
        }
    }

    /// <summary>Writes a reply's header (and its payload, when small enough to copy) into
    /// <paramref name="destination"/>. Returns the bytes written, 0 when they do not fit, or -1 when the
    /// reply cannot be formed (a bug; the connection is broken rather than the writer dying). A payload
    /// to send separately, straight from the device buffer, comes back in <paramref name="large"/>.</summary>
    private int AppendReply(NbdRequestContext context, Span<byte> destination, out ReadOnlyMemory<byte> large)
    {
        large = default;
        try
        {
            var payload = context.Error == 0 && context.Command == NbdCommand.Read && context.Length > 0
                ? context.Buffer!.Memory
                : default;
            var copy = payload.Length <= _copyThreshold;
            if (ReplyHeaderSize(context) + (copy ? payload.Length : 0) > destination.Length) return 0;
            var written = WriteReplyHeader(context, destination);
            if (copy)
            {
                payload.Span.CopyTo(destination[written..]);
                return written + payload.Length;
            }
            large = payload;
            return written;
        }
        catch (Exception e)
        {
            NbdLog.ConnectionFailed(_logger, e, _peer);
            _closeReason = "internal error: " + e.Message;
            Break();
            return -1;
        }
    }

    private void OnSendFailed(Exception e)
    {
        if (_broken) return;
        NbdLog.SendFailed(_logger, e, _peer);
        _closeReason = "sending failed: " + e.Message;
        Break();
    }

    private int ReplyHeaderSize(NbdRequestContext context)
    {
        if (!_structuredReplies) return NbdSimpleReply.Size;
        if (context.Error != 0) return NbdStructuredReplyHeader.Size + 6 + context.ErrorMessage.Length;
        if (context.Command == NbdCommand.Read)
            return context.Length > 0 ? NbdOffsetDataChunk.PrefixSize : NbdStructuredReplyHeader.Size;
        return NbdSimpleReply.Size;
    }

    private int WriteReplyHeader(NbdRequestContext context, Span<byte> destination)
    {
        if (!_structuredReplies)
        {
            new NbdSimpleReply((uint)context.Error, context.Handle).Write(destination);
            return NbdSimpleReply.Size;
        }
        if (context.Error != 0)
            return new NbdErrorChunk(context.Handle, (uint)context.Error, context.ErrorMessage.Span).Write(destination);
        if (context.Command == NbdCommand.Read)
        {
            if (context.Length == 0)
            {
                new NbdStructuredReplyHeader(NbdReplyFlags.Done, NbdReplyChunkType.None, context.Handle, 0).Write(destination);
                return NbdStructuredReplyHeader.Size;
            }
            new NbdOffsetDataChunk(context.Handle, (ulong)context.Offset, (uint)context.Length, Done: true).WritePrefix(destination);
            return NbdOffsetDataChunk.PrefixSize;
        }
        // Structured replies allow a simple reply for anything but READ.
        new NbdSimpleReply(0, context.Handle).Write(destination);
        return NbdSimpleReply.Size;
    }

    // ---------------------------------------------------------------- pooling and in-flight accounting

    private NbdRequestContext RentContext()
    {
        lock (_freeContexts)
        {
            if (_freeContextCount > 0)
            {
                var context = _freeContexts[--_freeContextCount];
                _freeContexts[_freeContextCount] = null!;
                return context;
            }
        }
        return new NbdRequestContext(this);
    }

    /// <summary>Returns a request whose reply has been written (or dropped) and frees its slot.</summary>
    private void Release(NbdRequestContext context)
    {
        context.Reset();
        lock (_freeContexts)
        {
            if (_freeContextCount < _freeContexts.Length) _freeContexts[_freeContextCount++] = context;
        }
        ReleaseSlot();
    }

    /// <summary>A request that will never be answered (its payload never fully arrived).</summary>
    private void ReleaseUnanswered(NbdRequestContext context) => Release(context);

    private void ReleaseSlot()
    {
        var now = Interlocked.Decrement(ref _inFlight);
        var threshold = Volatile.Read(ref _inFlightWaitThreshold);
        if (threshold != 0 && now < threshold &&
            Interlocked.CompareExchange(ref _inFlightWaitThreshold, 0, threshold) == threshold)
            _inFlightBelowThreshold.Set();
    }

    /// <summary>Completes once fewer than <paramref name="threshold"/> requests are in flight. Only the
    /// reader (or the connection's shutdown, after the reader is done) waits here.</summary>
    private ValueTask WaitForInFlightBelowAsync(int threshold)
    {
        if (Volatile.Read(ref _inFlight) < threshold) return ValueTask.CompletedTask;
        Volatile.Write(ref _inFlightWaitThreshold, threshold);
        if (Volatile.Read(ref _inFlight) < threshold &&
            Interlocked.Exchange(ref _inFlightWaitThreshold, 0) != 0)
            return ValueTask.CompletedTask; // took our own wait back before anyone claimed it
        return _inFlightBelowThreshold.WaitAsync();
    }
}
