using System.Runtime.CompilerServices;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Transport;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;
using Microsoft.Extensions.Logging;

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
        var iser = IserHeader.Control;
        if (opcode == IscsiOpcode.ScsiCommand && !pdu.Task.IsEmpty && !TryUseRegistered(pdu.Task, out iser))
            return SendThroughBounceAsync(pdu, cancellationToken);
        return SendPrepared(pdu, iser, cancellationToken);
    }

    /// <summary>Takes a descriptor and queues the PDU; synchronous unless a credit or descriptor must be waited for.</summary>
    private ValueTask SendPrepared(in OutboundPdu pdu, in IserHeader iser, CancellationToken cancellationToken)
    {
        var bhs = pdu.Header.Span;
        var opcode = BasicHeaderSegment.GetOpcode(bhs);
        var itt = BasicHeaderSegment.GetInitiatorTaskTag(bhs);
        var expectsAnswer = ExpectsAnswer(opcode, itt);
        var control = CountsAsControl(opcode, itt);
        int index;
        lock (_gate)
        {
            if (!TryAcquireSend(expectsAnswer, control, out index)) index = -1;
        }
        if (index < 0) return SendAfterWaitAsync(pdu, iser, expectsAnswer, control, cancellationToken);
        Queue(index, iser, pdu);
        return default;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendThroughBounceAsync(OutboundPdu pdu, CancellationToken cancellationToken)
    {
        var iser = await PrepareTaskBufferAsync(pdu.Task, cancellationToken).ConfigureAwait(false);
        await SendPrepared(pdu, iser, cancellationToken).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendAfterWaitAsync(OutboundPdu pdu, IserHeader iser, bool expectsAnswer, bool control, CancellationToken cancellationToken)
    {
        var index = await AcquireSendAsync(expectsAnswer, control, cancellationToken).ConfigureAwait(false);
        Queue(index, iser, pdu);
    }

    /// <summary>Fills the descriptor (its memory is held since the acquisition) and queues it for the next post.</summary>
    private void Queue(int index, in IserHeader iser, in OutboundPdu pdu)
    {
        try
        {
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

    /// <summary>One try at a descriptor and the credits a PDU needs (caller holds _gate).</summary>
    private bool TryAcquireSend(bool expectsAnswer, bool control, out int index)
    {
        if (_failure != null) throw Failure();
        if (_freeSendCount > 0 && (!expectsAnswer || _receiveCredits > 0)
            && (!control || _controlLimit == 0 || _controlOutstanding < _controlLimit) && EnterRegion())
        {
            index = _freeSends[--_freeSendCount];
            if (expectsAnswer) _receiveCredits--;
            if (control) _controlOutstanding++;
            return true;
        }
        index = -1;
        return false;
    }

    /// <summary>Posts every queued send as one chain (one doorbell).</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        PostPending();
        return ValueTask.CompletedTask;
    }

    /// <summary>Waits for a send descriptor and the credits the PDU needs; holds the descriptor memory for <see cref="Fill"/>.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> AcquireSendAsync(bool expectsAnswer, bool control, CancellationToken cancellationToken)
    {
        while (true)
        {
            bool flush;
            lock (_gate)
            {
                if (TryAcquireSend(expectsAnswer, control, out var index)) return index;
                flush = _pendingSendCount > 0;
                if (!flush) _sendWaiter.Arm();
            }
            if (flush)
            {
                // What we queued may be what frees the resource we wait for: post it before waiting.
                PostPending();
                continue;
            }
            Interlocked.Increment(ref _sendStalls);
            await _sendWaiter.WaitAsync(cancellationToken).ConfigureAwait(false);
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

    private unsafe void PostPending()
    {
        var requests = _region.SendRequests;
        int first, count;
        lock (_gate)
        {
            count = _pendingSendCount;
            if (count == 0) return;
            _pendingSendCount = 0;
            // Nothing goes out on a failed connection (teardown fails it first, then frees the descriptors); else the
            // descriptors are held until the provider has read the chain.
            if (_failure != null || !EnterRegion()) throw Failure();
            for (var i = 0; i < count; i++)
                requests[_pendingSends[i]].Next = i + 1 < count ? &requests[_pendingSends[i + 1]] : null;
            first = _pendingSends[0];
            _inflightSends += count;
        }
        int rc;
        try
        {
            rc = _wire.PostSend(&requests[first]);
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
            _sendWaiter.TryWake();
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

    /// <summary>The fast path: the task buffer is registered memory of our protection domain, advertised in place.</summary>
    private bool TryUseRegistered(in ScsiTaskData task, out IserHeader header)
    {
        if (!_taskMemory.TryGetRegistered(task.Buffer, out var segment))
        {
            header = default;
            return false;
        }
        Interlocked.Increment(ref _registeredTransfers);
        header = CommandHeader(task, segment);
        return true;
    }

    private static IserHeader CommandHeader(in ScsiTaskData task, RdmaSegment segment)
    {
        // The write VA skips what the core sends itself as immediate/unsolicited data (RFC 7145 §9.2; ib_iser does the same).
        var solicited = task.WriteLength > task.UnsolicitedLength;
        return IserHeader.ForCommand(segment.RemoteKey, segment.Address + (ulong)task.UnsolicitedLength, solicited,
            segment.RemoteKey, segment.Address, task.ReadLength > 0);
    }

    /// <summary>The slow path: a bounce buffer (copy in for WRITE, copy out at the SCSI Response for READ), or a one-off registration.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<IserHeader> PrepareTaskBufferAsync(ScsiTaskData task, CancellationToken cancellationToken)
    {
        var buffer = task.Buffer;
        TaskBuffer entry;
        RdmaSegment segment;
        if (buffer.Length <= _taskMemory.MaxBounceLength)
        {
            var bounce = await _taskMemory.RentBounceAsync(buffer.Length, cancellationToken).ConfigureAwait(false);
            if (task.WriteLength > 0) buffer.Span[..task.WriteLength].CopyTo(bounce.Memory.Span);
            segment = bounce.Segment;
            entry = new TaskBuffer(bounce, null, buffer, task.ReadLength);
            if (Interlocked.Increment(ref _bounceTransfers) == 1 || _logger.IsEnabled(LogLevel.Trace))
                _logger.LogDebug("iSER: ITT 0x{Itt:x8}: the {Length}-byte task buffer is not registered memory; copying through a bounce buffer " +
                    "(rent data buffers from the transport's registered pool to avoid the copy)", task.InitiatorTaskTag, buffer.Length);
        }
        else
        {
            var registration = _taskMemory.RegisterPinned(buffer, out segment);
            entry = new TaskBuffer(null, registration, buffer, 0);
            Interlocked.Increment(ref _pinnedTransfers);
            _logger.LogDebug("iSER: ITT 0x{Itt:x8}: the {Length}-byte task buffer is larger than any bounce buffer; registering it for this command",
                task.InitiatorTaskTag, buffer.Length);
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
        return CommandHeader(task, segment);
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

    public void ReleaseTask(uint initiatorTaskTag) => FinishTaskBuffer(initiatorTaskTag, copyRead: false);

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
}
