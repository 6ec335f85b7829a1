using System.Buffers;
using System.Runtime.CompilerServices;
using IserBlockd.Primitives.Splicing;

namespace IserBlockd.BlockDev.Buffers;

/// <summary>A rented buffer: pinned memory and the owner object both live as long as the pool. Its memory names
/// it as owner (a <see cref="MemoryManager{T}"/>), so a receive given a slice can find the buffer's
/// <see cref="PayloadPipe"/> once a READ reply that leaves by splice has armed it (<see cref="ArmPipe"/>).</summary>
internal sealed unsafe class PooledBlockBuffer(PinnedSizeClass owner, byte[] array, int offset, int capacity)
    : MemoryManager<byte>, IPayloadPipeCarrier
{
    private int _length;
    private int _rented;
    /// <summary>Made at the first <see cref="ArmPipe"/> and kept with the buffer; null when none could be made.</summary>
    private PayloadPipe? _pipe;
    private bool _pipeTried;
    private bool _pipeArmed;

    public override Memory<byte> Memory
    {
        get
        {
            if (Volatile.Read(ref _rented) == 0) throw new ObjectDisposedException(nameof(PooledBlockBuffer));
            return CreateMemory(_length);
        }
    }

    public override Span<byte> GetSpan() => new(array, offset, _length);

    /// <summary>The slab is allocated pinned: nothing to do but point into it.</summary>
    public override MemoryHandle Pin(int elementIndex = 0) =>
        new(Unsafe.AsPointer(ref array[offset + elementIndex]));

    public override void Unpin()
    {
    }

    protected override bool TryGetArray(out ArraySegment<byte> segment)
    {
        segment = new ArraySegment<byte>(array, offset, _length);
        return true;
    }

    internal void OnRented(int length)
    {
        _length = length;
        Volatile.Write(ref _rented, 1);
    }

    /// <summary>The pipe a receive may splice this buffer's bytes into, while armed.</summary>
    public PayloadPipe? PayloadPipe => _pipeArmed ? _pipe : null;

    /// <summary>Larger buffers are not piped: a pipe's pages are counted against the user (fs.pipe-user-pages-*), and
    /// a pipe beyond fs.pipe-max-size (1 MiB) needs privilege. Reads of 1 MiB and less are what clients send most.</summary>
    private const int MaxPipedCapacity = 4 << 20;

    /// <summary>Lets a receive splice this rental's bytes into the buffer's pipe (made now if it has none); false when
    /// no pipe could be made.</summary>
    internal bool ArmPipe()
    {
        if (!_pipeTried)
        {
            _pipeTried = true;
            // A pipe holds a page's worth or less per slot, and a socket's pages can be partly used: room for twice the
            // buffer where the system allows it, so that a splice rarely stops short of a whole payload.
            if (capacity <= MaxPipedCapacity) _pipe = PayloadPipe.TryCreate(capacity, wanted: 2 * capacity);
        }
        _pipeArmed = _pipe is { IsBroken: false };
        return _pipeArmed;
    }

    /// <summary>The whole rental is in the pipe (it can be spliced on as it is); or else, what is in the pipe goes into
    /// the buffer now and the pipe is disarmed.</summary>
    internal bool SettlePipe()
    {
        if (!_pipeArmed) return false;
        if (_pipe!.Start == 0 && _pipe.End == _length && _length > 0) return true;
        DetachPipe();
        return false;
    }

    public void DetachPipe()
    {
        if (!_pipeArmed) return;
        _pipeArmed = false;
        if (_pipe!.Length > 0) _pipe.MoveIntoBuffer(GetSpan());
    }

    protected override void Dispose(bool disposing)
    {
        // A rental that ended with bytes still in the pipe (a failed READ, a reply never sent) must not pass them on.
        if (_pipeArmed)
        {
            _pipeArmed = false;
            try
            {
                if (_pipe!.Length > 0) _pipe.Clear();
            }
            catch (IOException)
            {
                // The pipe is marked broken and never armed again; the buffer itself is fine.
            }
        }
        var state = Interlocked.Exchange(ref _rented, 0);
        if (state == 1) owner.Return(this);
        else if (state == Abandoned) owner.TakeBack(this);
    }

    private const int Abandoned = 2;

    /// <summary>The kernel still holds this buffer's pages (a reply sent by reference that a client we are done with
    /// has not read): the pool's reservation is released now, as if returned, but the memory is kept out of use
    /// until <see cref="IDisposable.Dispose"/>, once the client has read or dropped it. Meanwhile the pool grows rather than
    /// reuse it.</summary>
    internal void Abandon()
    {
        if (Interlocked.CompareExchange(ref _rented, Abandoned, 1) == 1) owner.ReleaseReservation();
    }

    public int Capacity => capacity;
}
