using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Nbd.Streams;
using IserBlockd.Primitives.Polling;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// Sends the replies of finished requests, in the order they finish. Replies that are ready together
/// leave together, in one gathered send (<c>sendmsg</c>): the headers from the writer's buffer and each READ
/// payload straight from the buffer the device read it into, so a READ's data is not copied again here. On a
/// transport that cannot gather (TLS) headers and small payloads are copied into one buffer instead.
/// </summary>
/// <remarks>While the reader works through a burst of requests it holds the writer back
/// (<see cref="HoldForBatch"/>) and releases it just before waiting for the socket again
/// (<see cref="EndBatch"/>), so a burst of pipelined requests costs one receive and one send.</remarks>
internal sealed class NbdReplyWriter
{
    private readonly NbdConnection _connection;
    private readonly bool _structuredReplies;
    private readonly int _copyThreshold;
    private readonly byte[] _buffer;
    /// <summary>Whether the transport sends several buffers in one call; otherwise small payloads are copied.</summary>
    private readonly bool _gathers;
    /// <summary>What one send carries, in order: slices of <see cref="_buffer"/> and READ payloads.</summary>
    private readonly ReadOnlyMemory<byte>[] _segments = new ReadOnlyMemory<byte>[INbdTransport.MaxGatheredSegments];

    private readonly object _lock = new();
    private NbdInFlightRequest? _head, _tail;
    private bool _running, _held, _stopping;
    private readonly LoopWakeSignal _wake = new();
    private readonly Action _wakeFromBurst;
    /// <summary>READ payloads this long or longer leave by page reference (0: never); see <see cref="LentReplyPages"/>.</summary>
    private readonly int _pagesThreshold;
    /// <summary>READ payloads this long or longer may come through a payload pipe and leave by splice (0: never).</summary>
    private readonly int _pipeThreshold;
    /// <summary>The reply whose header ends the gathered send and whose payload follows it by page reference.</summary>
    private NbdInFlightRequest? _paged;

    public NbdReplyWriter(NbdConnection connection, bool structuredReplies, NbdServerOptions options)
    {
        _connection = connection;
        _structuredReplies = structuredReplies;
        _copyThreshold = options.CopyThreshold;
        _buffer = GC.AllocateUninitializedArray<byte>(options.SendBufferSize, pinned: true);
        _gathers = connection.Transport.CanSendGathered;
        _wakeFromBurst = _wake.Set;
        _pagesThreshold = _gathers && connection.Transport.CanSendPages ? options.SendPagesThreshold : 0;
        _pipeThreshold = _gathers && connection.Transport.CanSendPipes ? options.SendPagesThreshold : 0;
        Lent = new LentReplyPages(connection, options.MaxRequestsInFlight);
    }

    /// <summary>Payloads sent by page reference that the client may not have read yet.</summary>
    public LentReplyPages Lent { get; }

    /// <summary>Queues a finished request's reply; wakes the writer unless it is busy or held.</summary>
    public void Enqueue(NbdInFlightRequest request)
    {
        lock (_lock)
        {
            if (_tail == null) _head = request;
            else _tail.Next = request;
            _tail = request;
            if (_running || _held) return;
            _running = true;
        }
        // Completed in a burst of the device's (CompletionBurst): the writer starts when the burst ends.
        if (!CompletionBurst.TryDefer(_wakeFromBurst)) _wake.Set();
    }

    /// <summary>The reader starts a burst: replies wait until <see cref="EndBatch"/>.</summary>
    public void HoldForBatch() => Volatile.Write(ref _held, true);

    /// <summary>The reader is about to wait: send what the burst produced.</summary>
    public void EndBatch() => Release(stop: false);

    /// <summary>Sends what is queued, then ends <see cref="RunAsync"/>. Call once no request is in flight.</summary>
    public void Stop() => Release(stop: true);

    private void Release(bool stop)
    {
        lock (_lock)
        {
            _held = false;
            if (stop) _stopping = true;
            if (_running || (_head == null && !stop)) return;
            _running = true;
        }
        _wake.Set();
    }

    /// <summary>The writer's loop: takes the queue, gathers as many replies as fit into one send, and sends.
    /// Every send passes through the awaits below, so the loop's state machine is allocated once per
    /// connection, not per send.</summary>
    public async Task RunAsync()
    {
        NbdInFlightRequest? queue = null;
        var transport = _connection.Transport;
        var replied = false;
        while (true)
        {
            queue ??= TakeQueue();
            if (queue == null)
            {
                if (Volatile.Read(ref _stopping)) return;
                // With requests in flight the next send looks again; only an idle connection needs the timer.
                if (_connection.InFlight == 0)
                {
                    if (Lent.Any) Lent.ReclaimLater();
                    // The last reply is out: what comes next is the client's next request.
                    if (replied) _connection.BeforeIdle(LowDepthWait.NextRequest);
                }
                replied = false;
                await _wake.WaitAsync().ConfigureAwait(false);
                continue;
            }
            if (Lent.Any) Lent.Reclaim();
            replied = true;
            var sending = queue;
            var count = _gathers ? GatherInPlace(ref queue) : GatherCopied(ref queue);
            var index = 0;
            while (index < count && !_connection.IsBroken)
            {
                _connection.OnSendStarting(); // the send timeout watches from here
                try
                {
                    if (_gathers) index = Advance(index, count, transport.SendGatheredNow(_segments.AsSpan(index, count - index)));
                    if (index < count)
                    {
                        // Nothing (more) fits now: the runtime's send waits for room.
                        var sent = await transport.SendAsync(_segments[index]).ConfigureAwait(false);
                        if (sent <= 0) throw new IOException("the transport accepted no bytes");
                        index = Advance(index, count, sent);
                    }
                }
                catch (Exception e)
                {
                    _connection.OnSendFailed(e);
                }
                _connection.OnSendFinished();
            }
            _segments.AsSpan(0, count).Clear();
            // A payload that follows its header by page reference: as far as the socket takes it now, the rest (if
            // any) the ordinary way. If any of it left by reference, its buffer is lent until the client reads it.
            var paged = _paged;
            _paged = null;
            var lend = false;
            if (paged != null && !_connection.IsBroken)
            {
                var payload = ReadPayload(paged);
                var buffer = (Buffers.PooledBlockBuffer)paged.Buffer!;
                _connection.OnSendStarting();
                try
                {
                    int offset;
                    if (buffer.PayloadPipe is { } pipe)
                    {
                        // Spliced from the target's socket: the pages go on by reference and belong to no buffer of
                        // ours, so nothing is lent. What the socket does not take now comes out of the pipe into the
                        // buffer and follows the ordinary way.
                        offset = transport.SendPipeNow(pipe);
                        if (offset < payload.Length) pipe.MoveIntoBuffer(buffer.GetSpan());
                    }
                    else
                    {
                        // Until it says how far it got: a failure part-way may have left pages in the socket.
                        lend = true;
                        offset = transport.SendPagesNow(payload);
                        lend = offset > 0;
                    }
                    Lent.Sent(offset);
                    while (offset < payload.Length && !_connection.IsBroken)
                    {
                        var sent = await transport.SendAsync(payload[offset..]).ConfigureAwait(false);
                        if (sent <= 0) throw new IOException("the transport accepted no bytes");
                        Lent.Sent(sent);
                        offset += sent;
                    }
                }
                catch (Exception e)
                {
                    _connection.OnSendFailed(e);
                }
                _connection.OnSendFinished();
            }
            // Every request this send carried (sent, or dropped with a broken connection) goes back now; a payload
            // that left by page reference stays lent until the client has read it.
            while (sending != queue)
            {
                var next = sending!.Next;
                if (lend && sending == paged) Lent.Lend(sending);
                else _connection.Release(sending);
                sending = next;
            }
        }
    }

    private NbdInFlightRequest? TakeQueue()
    {
        lock (_lock)
        {
            var head = _head;
            _head = _tail = null;
            if (head == null) _running = false;
            return head;
        }
    }

    /// <summary>Skips <paramref name="sent"/> bytes of the segments from <paramref name="index"/>; returns the first
    /// segment not wholly sent (trimmed to what is left of it).</summary>
    private int Advance(int index, int count, int sent)
    {
        Lent.Sent(sent);
        while (sent > 0 && index < count)
        {
            var length = _segments[index].Length;
            if (sent < length)
            {
                _segments[index] = _segments[index][sent..];
                return index;
            }
            sent -= length;
            index++;
        }
        return index;
    }

    /// <summary>Lays out replies from the head of <paramref name="queue"/> as segments of one gathered send: the
    /// headers in the send buffer, each READ payload straight from the buffer the device read it into (no copy).
    /// Stops when the segments, the header room or a send's worth of bytes are used up. Returns the segment
    /// count; the requests from the old head to the new one are released once the send is done.</summary>
    private int GatherInPlace(ref NbdInFlightRequest? queue)
    {
        var count = 0;
        var used = 0;
        var headerStart = 0;
        long bytes = 0;
        while (queue != null && bytes < _buffer.Length && count <= _segments.Length - 3)
        {
            var request = queue;
            if (_connection.IsBroken)
            {
                queue = request.Next;
                continue;
            }
            var size = ReplyHeaderSize(request);
            if (size > _buffer.Length - used)
            {
                if (count > 0 || used > 0) break; // this reply leads the next send
                _connection.Break("internal error: a reply larger than the send buffer");
                continue;
            }
            used += WriteReplyHeader(request, _buffer.AsSpan(used));
            bytes += size;
            queue = request.Next;
            var payload = ReadPayload(request);
            if (payload.IsEmpty) continue;
            _segments[count++] = _buffer.AsMemory(headerStart, used - headerStart);
            headerStart = used;
            if (SendsPages(request, payload))
            {
                // This send ends with the header; the payload follows by page reference.
                _paged = request;
                return count;
            }
            _segments[count++] = payload;
            bytes += payload.Length;
        }
        if (used > headerStart) _segments[count++] = _buffer.AsMemory(headerStart, used - headerStart);
        return count;
    }

    /// <summary>For a transport that cannot gather (TLS): copies headers and small READ payloads into the send buffer
    /// until it is full or a payload is too large to copy, which then follows the buffer straight from the device's
    /// memory as a second segment. Returns the segment count (as <see cref="GatherInPlace"/>).</summary>
    private int GatherCopied(ref NbdInFlightRequest? queue)
    {
        var used = 0;
        var count = 0;
        while (queue != null)
        {
            var request = queue;
            if (_connection.IsBroken)
            {
                queue = request.Next;
                continue;
            }
            var payload = ReadPayload(request);
            var copy = payload.Length <= _copyThreshold;
            var size = ReplyHeaderSize(request) + (copy ? payload.Length : 0);
            if (size > _buffer.Length - used)
            {
                if (used > 0) break; // send what is gathered; this reply leads the next send
                _connection.Break("internal error: a reply larger than the send buffer");
                continue;
            }
            used += WriteReplyHeader(request, _buffer.AsSpan(used));
            queue = request.Next;
            if (!copy)
            {
                _segments[count++] = _buffer.AsMemory(0, used);
                _segments[count++] = payload;
                return count;
            }
            payload.Span.CopyTo(_buffer.AsSpan(used));
            used += payload.Length;
        }
        if (used > 0) _segments[count++] = _buffer.AsMemory(0, used);
        return count;
    }

    /// <summary>A READ whose payload will leave by page reference may have its data spliced from the target's socket
    /// into its buffer's pipe, so that it passes through this process by reference only (see
    /// <see cref="Primitives.Splicing.PayloadPipe"/>). Called before the device reads.</summary>
    public void PrepareRead(NbdInFlightRequest request)
    {
        if (_pipeThreshold != 0 && request.Length >= _pipeThreshold && request.Buffer is Buffers.PooledBlockBuffer buffer)
            buffer.ArmPipe();
    }

    /// <summary>The device has read: a payload wholly in the pipe stays there to be spliced on; any other part of it
    /// in the pipe comes into the buffer now.</summary>
    public static void ReadDone(NbdInFlightRequest request) => (request.Buffer as Buffers.PooledBlockBuffer)?.SettlePipe();

    /// <summary>Whether the payload follows its header by reference: from its pipe (armed only by <see cref="PrepareRead"/>,
    /// so only on a transport that sends pipes), or by the pages of its
    /// buffer (a Unix socket; only the pool's buffers are lent to the kernel: their memory is pinned for the pool's
    /// life and is not reused until it is returned).</summary>
    private bool SendsPages(NbdInFlightRequest request, ReadOnlyMemory<byte> payload) =>
        request.Buffer is Buffers.PooledBlockBuffer buffer
        && (buffer.PayloadPipe != null || (_pagesThreshold != 0 && payload.Length >= _pagesThreshold));

    private static ReadOnlyMemory<byte> ReadPayload(NbdInFlightRequest request) =>
        request.Error == 0 && request.Command == NbdCommand.Read && request.Length > 0 ? request.Buffer!.Memory : default;

    private int ReplyHeaderSize(NbdInFlightRequest request)
    {
        if (!_structuredReplies) return NbdSimpleReply.Size;
        if (request.Error != 0) return NbdStructuredReplyHeader.Size + 6 + request.ErrorMessage.Length;
        if (request.Command == NbdCommand.Read)
            return request.Length > 0 ? NbdOffsetDataChunk.PrefixSize : NbdStructuredReplyHeader.Size;
        if (request.Command == NbdCommand.BlockStatus) return NbdBlockStatusChunk.GetSize(request.ExtentCount);
        return NbdSimpleReply.Size;
    }

    private int WriteReplyHeader(NbdInFlightRequest request, Span<byte> destination)
    {
        if (!_structuredReplies)
        {
            new NbdSimpleReply((uint)request.Error, request.Handle).Write(destination);
            return NbdSimpleReply.Size;
        }
        if (request.Error != 0)
            return new NbdErrorChunk(request.Handle, (uint)request.Error, request.ErrorMessage.Span).Write(destination);
        if (request.Command == NbdCommand.Read)
        {
            if (request.Length == 0)
            {
                new NbdStructuredReplyHeader(NbdReplyFlags.Done, NbdReplyChunkType.None, request.Handle, 0).Write(destination);
                return NbdStructuredReplyHeader.Size;
            }
            new NbdOffsetDataChunk(request.Handle, (ulong)request.Offset, (uint)request.Length, Done: true).WritePrefix(destination);
            return NbdOffsetDataChunk.PrefixSize;
        }
        if (request.Command == NbdCommand.BlockStatus)
            return NbdBlockStatusChunk.Write(destination, request.Handle, NbdHandshake.AllocationContextId,
                request.Extents.AsSpan(0, request.ExtentCount));
        // Structured replies allow a simple reply for anything but READ and BLOCK_STATUS.
        new NbdSimpleReply(0, request.Handle).Write(destination);
        return NbdSimpleReply.Size;
    }
}
