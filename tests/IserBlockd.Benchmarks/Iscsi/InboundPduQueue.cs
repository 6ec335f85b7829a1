using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Primitives.Async;

namespace IserBlockd.Benchmarks.Iscsi;

/// <summary>
/// The initiator's receive side of <see cref="InMemoryIscsiConnection"/>: PDUs the target queued, in order, in a ring
/// of preallocated slots (header and data copied in, as a socket buffer would hold them). What the target queues
/// becomes visible at <see cref="Publish"/> (the initiator's flush), as bytes leave a socket only when sent. A receive
/// that finds nothing waits on one reused completion source, so steady-state traffic allocates nothing here.
/// </summary>
/// <remarks>
/// A waiting receive is resumed on the thread pool, like a socket completion: the target never runs the initiator's
/// receive loop on the sending thread, which would otherwise serialise everything behind the first command.
/// </remarks>
internal sealed class InboundPduQueue
{
    private readonly object _gate = new();
    private readonly byte[][] _headers;
    private readonly byte[][] _data;
    private readonly int[] _dataLengths;
    private readonly ResettableCompletionSource<InboundPdu> _waiter = new(runContinuationsAsynchronously: true);
    private long _tail;      // next slot the target fills
    private long _published; // slots before this one are visible to the initiator
    private long _head;      // next slot handed to the initiator
    private long _current = -1; // the slot the initiator holds (valid until its next receive)
    private bool _waiting;
    private bool _closeRequested;
    private bool _closedByTarget;
    private Exception? _failure;

    public InboundPduQueue(int slots, int segmentCapacity)
    {
        _headers = new byte[slots][];
        _data = new byte[slots][];
        _dataLengths = new int[slots];
        for (var i = 0; i < slots; i++)
        {
            _headers[i] = new byte[BasicHeaderSegment.Length];
            _data[i] = new byte[segmentCapacity];
        }
        SegmentCapacity = segmentCapacity;
    }

    /// <summary>The largest data segment one slot holds.</summary>
    public int SegmentCapacity { get; }

    /// <summary>Target side: queues a PDU (BHS, no AHS) with its data segment; visible after <see cref="Publish"/>.</summary>
    public void Enqueue(ReadOnlySpan<byte> header, ReadOnlySpan<byte> data)
    {
        if (header.Length != BasicHeaderSegment.Length) throw new ArgumentException("the responder sends bare BHS headers", nameof(header));
        if (data.Length > SegmentCapacity) throw new ArgumentException($"a {data.Length}-byte data segment does not fit a {SegmentCapacity}-byte slot", nameof(data));
        lock (_gate)
        {
            if (_failure != null) throw new IscsiTransportException("connection closed");
            var inUse = _tail - (_current >= 0 ? _current : _head);
            if (inUse >= _headers.Length)
                throw new InvalidOperationException($"the initiator left {inUse} PDUs unread: more than the {_headers.Length} slots the in-memory connection has");
            var slot = (int)(_tail % _headers.Length);
            header.CopyTo(_headers[slot]);
            data.CopyTo(_data[slot]);
            _dataLengths[slot] = data.Length;
            _tail++;
        }
    }

    /// <summary>Makes everything queued visible; wakes a waiting receive.</summary>
    public void Publish()
    {
        InboundPdu next = default;
        Exception? closed = null;
        lock (_gate)
        {
            _published = _tail;
            if (_closeRequested) _closedByTarget = true;
            if (!_waiting) return;
            if (_head != _published) next = TakeLocked();
            else if (_closedByTarget) closed = new IscsiTransportException("connection closed by the target");
            else return;
            _waiting = false;
        }
        if (closed != null) _waiter.SetException(closed);
        else _waiter.SetResult(next);
    }

    /// <summary>
    /// The target closes the connection (after a logout): from the next <see cref="Publish"/> on, once the initiator
    /// has read everything before it, receives fail as on a closed socket.
    /// </summary>
    public void CloseAfterPublish()
    {
        lock (_gate) _closeRequested = true;
    }

    /// <summary>The initiator closes the connection: a waiting receive fails at once, later ones too.</summary>
    public void Fail(Exception reason)
    {
        lock (_gate)
        {
            _failure ??= reason;
            if (!_waiting) return;
            _waiting = false;
        }
        _waiter.SetException(reason);
    }

    /// <summary>A published PDU waits: the next receive returns it at once (the core's receive bursts).</summary>
    public bool HasPublished
    {
        get { lock (_gate) return _head != _published; }
    }

    public ValueTask<InboundPdu> ReceiveHeaderAsync()
    {
        lock (_gate)
        {
            _current = -1; // the previous PDU's header and data may be reused from now on
            if (_failure != null) return ValueTask.FromException<InboundPdu>(_failure);
            if (_head != _published) return new ValueTask<InboundPdu>(TakeLocked());
            if (_closedByTarget) return ValueTask.FromException<InboundPdu>(new IscsiTransportException("connection closed by the target"));
            _waiting = true;
            _waiter.Reset();
            return _waiter.WaitAsync();
        }
    }

    /// <summary>The data segment of the PDU last handed out; valid until the next <see cref="ReceiveHeaderAsync"/>.</summary>
    public ReadOnlyMemory<byte> CurrentData
    {
        get
        {
            lock (_gate)
            {
                if (_current < 0) throw new InvalidOperationException("no PDU received");
                var slot = (int)(_current % _headers.Length);
                return _data[slot].AsMemory(0, _dataLengths[slot]);
            }
        }
    }

    private InboundPdu TakeLocked()
    {
        _current = _head++;
        return new InboundPdu(_headers[(int)(_current % _headers.Length)]);
    }
}
