using System.Runtime.CompilerServices;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;
using Microsoft.Extensions.Logging;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Transport.Iser;

public sealed partial class IserConnection
{
    /// <summary>
    /// Queues a PDU as one RDMA Send: iSER header, BHS and AHS, data segment, copied into a send descriptor (so the
    /// caller may reuse its header and data as soon as this returns). A SCSI Command that moves data gets the STag/VA
    /// of its task buffer in the iSER header. Waits while no send descriptor is free, while its answer would find no
    /// posted receive buffer, or while the target's MaxOutstandingUnexpectedPDUs is reached.
    /// </summary>
    public ValueTask SendAsync(OutboundPdu pdu, CancellationToken cancellationToken)
    {
        var header = pdu.Header;
        var data = pdu.Data;
        if (header.Length < BasicHeaderSegment.Length || header.Length > BasicHeaderSegment.Length + IserConnectionOptions.AhsRoom)
            throw new ArgumentException($"a PDU header of {header.Length} bytes does not fit an iSER send descriptor", nameof(pdu));
        var sendCapacity = _region.SendSize - IserHeader.Length - header.Length;
        if (data.Length > sendCapacity || data.Length > Math.Max(_keys.SendDataSegmentLength, Iscsi.Negotiation.IscsiKeys.DefaultMaxRecvDataSegmentLength))
            throw new InvalidOperationException($"a {data.Length}-byte data segment exceeds what the target receives in one iSER Send ({_keys.SendDataSegmentLength} bytes)");
        // Early, so that a failed connection rents no bounce buffer; TryAcquireSend checks again under the lock.
        if (Volatile.Read(ref _failure) is { } failure) throw failure;
        var opcode = BasicHeaderSegment.GetOpcode(header.Span);
        if (opcode == IscsiOpcode.ScsiCommand && !pdu.Task.IsEmpty)
        {
            if (!_taskMemory.TryGetRegistered(pdu.Task.Buffer, out var segment, out var region))
                return SendThroughBounceAsync(pdu, cancellationToken);
            Interlocked.Increment(ref _registeredTransfers);
            return SendPrepared(pdu, new TaskPlacement(segment, region, true), cancellationToken);
        }
        return SendPrepared(pdu, default, cancellationToken);
    }

    /// <summary>Where the target finds a command's data: a registered segment and its registration (<c>ibv_mr*</c>).</summary>
    private readonly record struct TaskPlacement(RdmaSegment Segment, IntPtr Region, bool IsSet);

    /// <summary>What a PDU needs before it may go out.</summary>
    private readonly record struct SendNeeds(bool ExpectsAnswer, bool Control, bool Ping, bool Command, bool Window);

    private SendNeeds NeedsOf(IscsiOpcode opcode, uint itt, in ScsiTaskData task, in TaskPlacement placement) => new(
        IserArrivals.ExpectsAnswer(opcode, itt),
        IserArrivals.CountsAsControl(opcode, itt),
        Ping: opcode == IscsiOpcode.NopOut && itt != ReservedTag,
        Command: opcode == IscsiOpcode.ScsiCommand,
        Window: _windows != null && placement.IsSet && (task.ReadLength > 0 || task.WriteLength > task.UnsolicitedLength));

    /// <summary>Takes a descriptor and queues the PDU; synchronous unless a credit or descriptor must be waited for.</summary>
    private ValueTask SendPrepared(in OutboundPdu pdu, in TaskPlacement placement, CancellationToken cancellationToken)
    {
        var bhs = pdu.Header.Span;
        var itt = BasicHeaderSegment.GetInitiatorTaskTag(bhs);
        var needs = NeedsOf(BasicHeaderSegment.GetOpcode(bhs), itt, pdu.Task, placement);
        int index, window;
        lock (_gate)
        {
            if (!TryAcquireSend(needs, itt, out index, out window)) index = -1;
        }
        if (index < 0) return SendAfterWaitAsync(pdu, placement, needs, itt, cancellationToken);
        Queue(index, window, placement, pdu);
        return default;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendThroughBounceAsync(OutboundPdu pdu, CancellationToken cancellationToken)
    {
        var placement = await PrepareTaskBufferAsync(pdu.Task, cancellationToken).ConfigureAwait(false);
        await SendPrepared(pdu, placement, cancellationToken).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendAfterWaitAsync(OutboundPdu pdu, TaskPlacement placement, SendNeeds needs, uint itt, CancellationToken cancellationToken)
    {
        var (index, window) = await AcquireSendAsync(needs, itt, cancellationToken).ConfigureAwait(false);
        Queue(index, window, placement, pdu);
    }

    /// <summary>
    /// Binds the command's window (if it has one), fills the descriptor (its memory is held since the acquisition)
    /// and queues it for the next post.
    /// </summary>
    private void Queue(int index, int window, in TaskPlacement placement, in OutboundPdu pdu)
    {
        try
        {
            var iser = IserHeader.Control;
            if (placement.IsSet)
                iser = CommandHeader(pdu.Task, window >= 0 ? BindWindow(window, index, pdu.Task, placement) : placement.Segment);
            Fill(index, iser, pdu.Header.Span, pdu.Data.Span);
        }
        catch
        {
            ExitRegion();
            throw;
        }
        bool post, free;
        lock (_gate)
        {
            free = ExitRegionLocked();
            _pendingSends[_pendingSendCount++] = index;
            post = _pendingSendCount >= _options.PostBatch;
        }
        if (free) _region.FreeMemory();
        if (post) PostPending();
    }

    /// <summary>
    /// One try at a descriptor and the credits a PDU needs (caller holds _gate). Only a ping may take the last
    /// descriptor and answer buffer (<see cref="IserConnectionOptions.PingReserve"/>).
    /// </summary>
    private bool TryAcquireSend(in SendNeeds needs, uint itt, out int index, out int window)
    {
        if (_failure != null) throw Failure();
        var spare = needs.Ping ? 0 : IserConnectionOptions.PingReserve;
        if (_freeSendCount > spare && (!needs.ExpectsAnswer || _receiveCredits > spare)
            && (!needs.Control || _controlLimit == 0 || _controlOutstanding < _controlLimit)
            && (!needs.Window || _windows!.FreeCount > 0) && EnterRegion())
        {
            index = _freeSends[--_freeSendCount];
            if (needs.ExpectsAnswer)
            {
                _receiveCredits--;
                if (needs.Command) _answerPending.Add(itt);
            }
            if (needs.Control) _controlOutstanding++;
            window = needs.Window ? _windows!.Take(itt) : -1;
            return true;
        }
        index = window = -1;
        return false;
    }

    /// <summary>Posts every queued send as one chain (one doorbell).</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        PostPending();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Waits for a send descriptor and the credits the PDU needs; holds the descriptor memory for <see cref="Fill"/>.
    /// A ping waits on a waiter of its own, so it may wait beside the writer.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(int Index, int Window)> AcquireSendAsync(SendNeeds needs, uint itt, CancellationToken cancellationToken)
    {
        var waiter = needs.Ping ? _pingWaiter : _sendWaiter;
        while (true)
        {
            bool flush;
            lock (_gate)
            {
                if (TryAcquireSend(needs, itt, out var index, out var window)) return (index, window);
                flush = _pendingSendCount > 0;
                if (!flush) waiter.Arm();
            }
            if (flush)
            {
                // What we queued may be what frees the resource we wait for: post it before waiting.
                PostPending();
                continue;
            }
            Interlocked.Increment(ref _sendStalls);
            await waiter.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private unsafe void Fill(int index, in IserHeader iser, ReadOnlySpan<byte> header, ReadOnlySpan<byte> data)
    {
        var offset = _region.SendOffset(index);
        var length = IserHeader.Length + header.Length + data.Length;
        var descriptor = _region.Slice(offset, length);
        iser.Write(descriptor);
        header.CopyTo(descriptor[IserHeader.Length..]);
        data.CopyTo(descriptor[(IserHeader.Length + header.Length)..]);
        _region.SendSges[index] = new IbvSge(_region.AddressOf(offset), (uint)length, _region.LocalKey);
        _region.SendRequests[index].Next = null;
    }

    /// <summary>
    /// Posts the queued sends as one chain, each command's window bind right before its Send. Serialised, so that
    /// the writer's and a ping's chains reach the queue pair in the order they were queued.
    /// </summary>
    private void PostPending()
    {
        lock (_postGate) PostPendingInOrder();
    }

    private unsafe void PostPendingInOrder()
    {
        var requests = _region.SendRequests;
        IbvSendWr* first = null;
        int count;
        lock (_gate)
        {
            count = _pendingSendCount;
            if (count == 0) return;
            _pendingSendCount = 0;
            // Nothing goes out on a failed connection (teardown fails it first, then frees the descriptors); else the
            // descriptors are held until the provider has read the chain.
            if (_failure != null || !EnterRegion()) throw Failure();
            IbvSendWr* last = null;
            for (var i = 0; i < count; i++)
            {
                var index = _pendingSends[i];
                var send = &requests[index];
                IbvSendWr* head = send;
                var bind = _windows != null ? _windows.TakeBindBefore(index) : null;
                if (bind != null)
                {
                    head = bind;
                    head->Next = send;
                }
                send->Next = null;
                if (last == null) first = head;
                else last->Next = head;
                last = send;
            }
            _inflightSends += count;
        }
        int rc;
        try
        {
            rc = _wire.PostSend(first);
        }
        finally
        {
            ExitRegion();
        }
        if (rc != 0)
        {
            var error = new IscsiTransportException($"posting {count} RDMA sends failed: {Errno.Describe(rc)} (the connection is gone)");
            Fail(error);
            throw error;
        }
        Interlocked.Add(ref _pdusSent, count);
    }

    /// <summary>A send completed (event loop thread): its descriptor is free again.</summary>
    private void OnSendCompleted(int index, in IbvWc completion)
    {
        lock (_gate)
        {
            _inflightSends--;
            _freeSends[_freeSendCount++] = index;
            WakeSenders();
            CheckDrained();
        }
        if (completion.Status != IbvWcStatus.Success)
            Fail(new IscsiTransportException(completion.Status == IbvWcStatus.WorkRequestFlushError
                ? "the RDMA connection closed (sends flushed)"
                : $"an RDMA Send failed: {WorkCompletionException.Describe(completion.Status)}"));
    }

    // ---------------------------------------------------------------- task buffers

    /// <summary>How a command's buffer is known to the target, when it is not used in place.</summary>
    private readonly record struct TaskBuffer(RegisteredBuffer? Bounce, IDisposable? Pinned, Memory<byte> Destination, int ReadLength);

    private static IserHeader CommandHeader(in ScsiTaskData task, RdmaSegment segment)
    {
        // The write VA skips what the core sends itself as immediate/unsolicited data (RFC 7145 §9.2; ib_iser does the same).
        var solicited = task.WriteLength > task.UnsolicitedLength;
        return IserHeader.ForCommand(segment.RemoteKey, segment.Address + (ulong)task.UnsolicitedLength, solicited,
            segment.RemoteKey, segment.Address, task.ReadLength > 0);
    }

    /// <summary>The slow path: a bounce buffer (copy in for WRITE, copy out at the SCSI Response for READ), or a one-off registration.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<TaskPlacement> PrepareTaskBufferAsync(ScsiTaskData task, CancellationToken cancellationToken)
    {
        var buffer = task.Buffer;
        TaskBuffer entry;
        RdmaSegment segment;
        IntPtr region;
        if (buffer.Length <= _taskMemory.MaxBounceLength)
        {
            var bounce = await _taskMemory.RentBounceAsync(buffer.Length, cancellationToken).ConfigureAwait(false);
            if (task.WriteLength > 0) buffer.Span[..task.WriteLength].CopyTo(bounce.Memory.Span);
            segment = bounce.Segment;
            region = _taskMemory.RegionOf(segment);
            entry = new TaskBuffer(bounce, null, buffer, task.ReadLength);
            if (Interlocked.Increment(ref _bounceTransfers) == 1 || _logger.IsEnabled(LogLevel.Trace))
                IserLog.BounceCopy(_logger, task.InitiatorTaskTag, buffer.Length);
        }
        else
        {
            var registration = _taskMemory.RegisterPinned(buffer, out segment, out region);
            entry = new TaskBuffer(null, registration, buffer, 0);
            Interlocked.Increment(ref _pinnedTransfers);
            IserLog.PinnedForCommand(_logger, task.InitiatorTaskTag, buffer.Length);
        }
        TaskBuffer previous = default;
        bool replaced, failed;
        lock (_gate)
        {
            failed = _failure != null;
            replaced = !failed && _taskBuffers.Remove(task.InitiatorTaskTag, out previous);
            if (!failed) _taskBuffers[task.InitiatorTaskTag] = entry;
        }
        if (replaced) Release(previous);
        if (failed)
        {
            Release(entry);
            throw Failure();
        }
        return new TaskPlacement(segment, region, true);
    }

    /// <summary>The command is over (its SCSI Response arrived): copy READ data out of its bounce buffer and give the buffer back.</summary>
    private void FinishTaskBuffer(uint itt, bool copyRead)
    {
        TaskBuffer entry;
        lock (_gate)
        {
            if (_taskBuffers.Count == 0 || !_taskBuffers.Remove(itt, out entry)) return;
        }
        if (copyRead && entry.Bounce != null && entry.ReadLength > 0)
            entry.Bounce.Memory.Span[..entry.ReadLength].CopyTo(entry.Destination.Span);
        Release(entry);
    }

    /// <summary>
    /// The core is done with the task (completed, failed, or ended by ABORT TASK / LU reset). A command still
    /// waiting for its answer gives its answer buffer back (an ended task gets none; a late one then counts as
    /// unsolicited), and its window is invalidated.
    /// </summary>
    public void ReleaseTask(uint initiatorTaskTag)
    {
        int window;
        lock (_gate)
        {
            if (_answerPending.Count > 0 && _answerPending.Remove(initiatorTaskTag))
            {
                _receiveCredits++;
                WakeSenders();
            }
            window = _windows?.Release(initiatorTaskTag) ?? -1;
        }
        if (window >= 0) PostInvalidate(window);
        FinishTaskBuffer(initiatorTaskTag, copyRead: false);
    }

    private void ReleaseAllTaskBuffers()
    {
        TaskBuffer[] entries;
        lock (_gate)
        {
            if (_taskBuffers.Count == 0) return;
            entries = [.. _taskBuffers.Values];
            _taskBuffers.Clear();
        }
        foreach (var entry in entries) Release(entry);
    }

    private static void Release(in TaskBuffer entry)
    {
        entry.Bounce?.Return();
        entry.Pinned?.Dispose();
    }

    // ---------------------------------------------------------------- memory windows: binds and invalidates

    /// <summary>Prepares the bind of <paramref name="window"/> over the task buffer, to precede send descriptor <paramref name="sendIndex"/>.</summary>
    private RdmaSegment BindWindow(int window, int sendIndex, in ScsiTaskData task, in TaskPlacement placement)
    {
        if (placement.Region == IntPtr.Zero)
            throw new InvalidOperationException($"ITT 0x{task.InitiatorTaskTag:x8}: the task buffer's registration is unknown; no window can be bound over it");
        var access = IbvAccessFlags.None;
        if (task.ReadLength > 0) access |= IbvAccessFlags.RemoteWrite;
        if (task.WriteLength > task.UnsolicitedLength) access |= IbvAccessFlags.RemoteRead;
        return _windows!.Bind(window, sendIndex, placement.Segment, placement.Region, access);
    }

    /// <summary>Posts the local invalidate of <paramref name="window"/> (signaled: its completion frees the window).</summary>
    private unsafe void PostInvalidate(int window)
    {
        lock (_gate)
        {
            // A failed connection's queue pair is in the error state: nothing reaches the window any more.
            if (_failure != null || !EnterRegion()) return;
            _inflightSends++;
        }
        int rc;
        try
        {
            rc = _wire.PostSend(_windows!.PrepareInvalidate(window));
        }
        finally
        {
            ExitRegion();
        }
        if (rc == 0)
        {
            _windows.CountLocalInvalidation();
            return;
        }
        lock (_gate)
        {
            _inflightSends--;
            CheckDrained();
        }
        Fail(new IscsiTransportException($"posting a memory window invalidate failed: {Errno.Describe(rc)} (the connection is gone)"));
    }

    /// <summary>A local invalidate completed (event loop thread): the window is free, a response held for it is released.</summary>
    private void OnInvalidateCompleted(int window, in IbvWc completion)
    {
        var ok = completion.Status == IbvWcStatus.Success;
        lock (_gate)
        {
            _inflightSends--;
            if (_windows!.Invalidated(window, ok) >= 0) _receiveWaiter.TryWake();
            if (ok) WakeSenders();
            CheckDrained();
        }
        if (!ok)
            Fail(new IscsiTransportException(completion.Status == IbvWcStatus.WorkRequestFlushError
                ? "the RDMA connection closed (a memory window invalidate flushed)"
                : $"invalidating a memory window failed: {WorkCompletionException.Describe(completion.Status)}"));
    }

    /// <summary>A bind completed with an error (binds are unsignaled): the connection cannot scope access any more.</summary>
    private void OnBindCompleted(in IbvWc completion)
    {
        if (completion.Status == IbvWcStatus.Success) return;
        Fail(new IscsiTransportException(completion.Status == IbvWcStatus.WorkRequestFlushError
            ? "the RDMA connection closed (a memory window bind flushed)"
            : $"binding a memory window failed: {WorkCompletionException.Describe(completion.Status)}"));
    }

    private sealed class BindCompletion(IserConnection connection) : IWorkCompletionHandler
    {
        public void OnWorkCompletion(in IbvWc completion) => connection.OnBindCompleted(completion);
    }

    private sealed class InvalidateCompletion(IserConnection connection, int window) : IWorkCompletionHandler
    {
        public void OnWorkCompletion(in IbvWc completion) => connection.OnInvalidateCompleted(window, completion);
    }
}
