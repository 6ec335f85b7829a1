using System.Runtime.CompilerServices;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Transport.Iser;

/// <summary>The receive path of <see cref="IserConnection"/>: PDUs in arrival order to the core, receive buffers re-posted
/// and credits returned, responses held while their command's window is invalidated (<see cref="IserArrivals"/> says
/// what each arrival does to flow control).</summary>
public sealed partial class IserConnection
{
    /// <summary>
    /// The next PDU the target sent, in arrival order. The receive buffer of the previous one is re-posted first.
    /// The header (and, through <see cref="ReceiveDataAsync"/>, the data segment) stay in the receive buffer: valid
    /// until the next call.
    /// </summary>
    public ValueTask<InboundPdu> ReceiveHeaderAsync(CancellationToken cancellationToken)
    {
        ReleaseCurrentReceive();
        int index, length;
        lock (_gate)
        {
            if (!TryTakeArrived(out index, out length))
            {
                if (_failure != null) throw Failure();
                index = -1;
            }
        }
        return index >= 0 ? new ValueTask<InboundPdu>(ParseOrFail(index, length)) : WaitForPduAsync(cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<InboundPdu> WaitForPduAsync(CancellationToken cancellationToken)
    {
        int index, length;
        while (true)
        {
            lock (_gate)
            {
                if (TryTakeArrived(out index, out length)) break;
                if (_failure != null) throw Failure();
                _receiveWaiter.Arm();
            }
            await _receiveWaiter.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        return ParseOrFail(index, length);
    }

    /// <summary>
    /// Takes the oldest arrived PDU (caller holds _gate). What arrived before a failure is still delivered (a Logout
    /// Response before the disconnect, say).
    /// </summary>
    private bool TryTakeArrived(out int index, out int length)
    {
        // A SCSI Response whose window is still being invalidated holds the queue (order is kept).
        if (_arrivedCount > 0 && _windows?.IsReceiveHeld(_arrivedIndex[_arrivedHead]) != true && EnterRegion())
        {
            index = _arrivedIndex[_arrivedHead];
            length = _arrivedLength[_arrivedHead];
            _arrivedHead = (_arrivedHead + 1) % _arrivedIndex.Length;
            _arrivedCount--;
            _current = index;
            return true;
        }
        index = length = -1;
        return false;
    }

    private InboundPdu ParseOrFail(int index, int length)
    {
        try
        {
            return Parse(index, length);
        }
        catch (IscsiProtocolException e)
        {
            Fail(e); // malformed framing ends the connection; the buffer is not re-posted
            ReleaseCurrentReceive();
            throw;
        }
    }

    private InboundPdu Parse(int index, int length)
    {
        var offset = _region.ReceiveOffset(index);
        if (length < HeadersLength)
            throw new IscsiProtocolException($"the target sent a {length}-byte message, shorter than the iSER header and BHS ({HeadersLength} bytes)");
        var message = _region.Slice(offset, length);
        var iser = IserHeader.Read(message);
        if (iser.Opcode != IserHeaderFlags.IscsiControl)
            throw new IscsiProtocolException(iser.Opcode is IserHeaderFlags.Hello or IserHeaderFlags.HelloReply
                ? $"the target sent an {iser} message; this initiator negotiates through the RDMA-CM private data and sends no Hello"
                : $"the target sent a message with iSER flags 0x{(byte)iser.Flags:x2}, not an iSCSI control PDU");
        var bhs = message.Slice(IserHeader.Length, BasicHeaderSegment.Length);
        var ahs = BasicHeaderSegment.GetTotalAhsLength(bhs);
        var dataLength = BasicHeaderSegment.GetDataSegmentLength(bhs);
        var opcode = BasicHeaderSegment.GetOpcode(bhs);
        if (HeadersLength + ahs + dataLength > length)
            throw new IscsiProtocolException($"truncated {opcode} PDU: it announces {ahs} bytes of AHS and a {dataLength}-byte data segment, " +
                $"but the RDMA Send carried {length - HeadersLength} bytes after the BHS");
        _dataOffset = offset + HeadersLength + ahs;
        _dataLength = dataLength;
        _dataTaken = false;
        Interlocked.Increment(ref _pdusReceived);
        if (opcode == IscsiOpcode.ScsiResponse) FinishTaskBuffer(BasicHeaderSegment.GetInitiatorTaskTag(bhs), copyRead: true);
        return new InboundPdu(_regionMemory.Slice(offset + IserHeader.Length, BasicHeaderSegment.Length + ahs));
    }

    /// <summary>
    /// The data segment of the PDU just received: copied into <paramref name="destination"/> when one is given, else
    /// the receive buffer itself (valid until the next <see cref="ReceiveHeaderAsync"/>).
    /// </summary>
    public ValueTask<ReadOnlyMemory<byte>> ReceiveDataAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _current) < 0 || _dataTaken)
            throw new InvalidOperationException("ReceiveDataAsync is called once, after ReceiveHeaderAsync returned a PDU with a data segment.");
        _dataTaken = true;
        var data = _regionMemory.Slice(_dataOffset, _dataLength);
        if (destination.IsEmpty) return new ValueTask<ReadOnlyMemory<byte>>(data);
        if (destination.Length != _dataLength)
            throw new ArgumentException($"the destination holds {destination.Length} bytes; the data segment has {_dataLength}", nameof(destination));
        data.Span.CopyTo(destination.Span);
        return new ValueTask<ReadOnlyMemory<byte>>(destination);
    }

    /// <summary>Re-posts the receive buffer the core was reading (it is done with the previous PDU).</summary>
    private unsafe void ReleaseCurrentReceive()
    {
        int index;
        bool failed;
        lock (_gate)
        {
            index = _current;
            if (index < 0) return;
            _current = -1;
            failed = _failure != null;
        }
        var posted = false;
        if (!failed)
        {
            var request = &_region.ReceiveRequests[index];
            request->Next = null;
            var rc = _wire.PostReceive(request);
            if (rc != 0) Fail(new IscsiTransportException($"re-posting a receive buffer failed: {Errno.Describe(rc)} (the connection is gone)"));
            posted = rc == 0;
        }
        bool free;
        lock (_gate)
        {
            if (posted)
            {
                _postedReceives++;
                if (_receiveKind[index] != ArrivalKind.Unsolicited)
                {
                    _receiveCredits++;
                    WakeSenders();
                }
            }
            free = ExitRegionLocked();
        }
        if (free) _region.FreeMemory();
    }

    /// <summary>A receive completed (event loop thread): queue the PDU for the receiver and settle the credits.</summary>
    private void OnReceiveCompleted(int index, in IbvWc completion)
    {
        if (completion.Status != IbvWcStatus.Success)
        {
            lock (_gate)
            {
                _postedReceives--;
                CheckDrained();
            }
            Fail(new IscsiTransportException(completion.Status == IbvWcStatus.WorkRequestFlushError
                ? "the RDMA connection closed (receive buffers flushed)"
                : $"an RDMA receive failed: {WorkCompletionException.Describe(completion.Status)}"));
            return;
        }
        var length = (int)completion.ByteLength;
        var answered = ReservedTag;
        var kind = length >= HeadersLength ? IserArrivals.Classify(_region.Slice(_region.ReceiveOffset(index), length), out answered) : ArrivalKind.Answer;
        var invalidate = -1;
        lock (_gate)
        {
            _postedReceives--;
            if (answered != ReservedTag)
            {
                // The answer of a command the core already released (aborted, reset) found its buffer given back: it
                // takes one of the reserve, as an unsolicited PDU would.
                if (!_answerPending.Remove(answered)) kind = ArrivalKind.Unsolicited;
                if (_windows != null && !_windows.Settle(answered, index, completion, out invalidate, out var freed))
                {
                    invalidate = -1;
                    if (freed) WakeSenders();
                }
            }
            var tail = (_arrivedHead + _arrivedCount) % _arrivedIndex.Length;
            _arrivedIndex[tail] = index;
            _arrivedLength[tail] = length;
            _arrivedCount++;
            // An answer fills the buffer its request reserved; an unsolicited PDU one of the reserve. Credits change
            // only when an answer's buffer is posted again (the reserve refills itself).
            _receiveKind[index] = kind;
            if (kind == ArrivalKind.ControlAnswer && _controlOutstanding > 0)
            {
                _controlOutstanding--;
                WakeSenders();
            }
            _receiveWaiter.TryWake();
            CheckDrained();
        }
        if (invalidate >= 0) PostInvalidate(invalidate);
    }
}
