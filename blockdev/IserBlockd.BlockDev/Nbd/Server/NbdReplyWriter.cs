using IserBlockd.BlockDev.Nbd.Protocol;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// Sends the replies of finished requests, in the order they finish. Replies that are ready together
/// leave together: headers and small READ payloads are gathered in one buffer and sent at once; a large
/// payload follows its header straight from the device buffer.
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

    private readonly object _lock = new();
    private NbdInFlightRequest? _head, _tail;
    private bool _running, _held, _stopping;
    private readonly LoopWakeSignal _wake = new();
    private readonly Action _wakeFromBurst;

    public NbdReplyWriter(NbdConnection connection, bool structuredReplies, NbdServerOptions options)
    {
        _connection = connection;
        _structuredReplies = structuredReplies;
        _copyThreshold = options.CopyThreshold;
        _buffer = GC.AllocateUninitializedArray<byte>(options.SendBufferSize, pinned: true);
        _wakeFromBurst = _wake.Set;
    }

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
    /// Every send passes through the one await below, so the loop's state machine is allocated once per
    /// connection, not per send.</summary>
    public async Task RunAsync()
    {
        NbdInFlightRequest? queue = null;
        while (true)
        {
            queue ??= TakeQueue();
            if (queue == null)
            {
                if (Volatile.Read(ref _stopping)) return;
                await _wake.WaitAsync().ConfigureAwait(false);
                continue;
            }
            var used = Gather(ref queue, out var large, out var largeOwner);
            var data = (ReadOnlyMemory<byte>)_buffer.AsMemory(0, used);
            while (true)
            {
                while (!data.IsEmpty && !_connection.IsBroken)
                {
                    _connection.OnSendStarting(); // the send timeout watches from here
                    try
                    {
                        var sent = await _connection.Transport.SendAsync(data).ConfigureAwait(false);
                        if (sent <= 0) throw new IOException("the transport accepted no bytes");
                        data = data[sent..];
                    }
                    catch (Exception e)
                    {
                        _connection.OnSendFailed(e);
                    }
                    _connection.OnSendFinished();
                }
                if (large.IsEmpty) break;
                data = large;
                large = default;
            }
            if (largeOwner != null) _connection.Release(largeOwner);
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

    /// <summary>Writes replies from the head of <paramref name="queue"/> into the send buffer until it is full
    /// or a reply's payload is too large to copy; that payload comes back in <paramref name="large"/>, to
    /// be sent after the buffer straight from the device's memory, and its request in
    /// <paramref name="largeOwner"/>. Requests whose reply is in the buffer (or dropped, when the connection
    /// is broken) are returned to the connection. Returns the bytes used.</summary>
    private int Gather(ref NbdInFlightRequest? queue, out ReadOnlyMemory<byte> large, out NbdInFlightRequest? largeOwner)
    {
        large = default;
        largeOwner = null;
        var used = 0;
        while (queue != null)
        {
            var request = queue;
            if (_connection.IsBroken)
            {
                queue = request.Next;
                _connection.Release(request);
                continue;
            }
            var payload = ReadPayload(request);
            var copy = payload.Length <= _copyThreshold;
            var size = ReplyHeaderSize(request) + (copy ? payload.Length : 0);
            if (size > _buffer.Length - used)
            {
                if (used > 0) return used; // send what is gathered; this reply leads the next send
                _connection.Break("internal error: a reply larger than the send buffer");
                continue;
            }
            used += WriteReplyHeader(request, _buffer.AsSpan(used));
            queue = request.Next;
            if (!copy)
            {
                large = payload;
                largeOwner = request;
                return used;
            }
            payload.Span.CopyTo(_buffer.AsSpan(used));
            used += payload.Length;
            _connection.Release(request);
        }
        return used;
    }

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
