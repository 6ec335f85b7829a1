using System.Buffers;

namespace IserBlockd.BlockDev.Buffers;

/// <summary>A rented buffer: pinned memory and the owner object both live as long as the pool.</summary>
internal sealed class PooledBlockBuffer(PinnedSizeClass owner, byte[] array, int offset, int capacity) : IMemoryOwner<byte>
{
    private int _length;
    private int _rented;

    public Memory<byte> Memory
    {
        get
        {
            if (Volatile.Read(ref _rented) == 0) throw new ObjectDisposedException(nameof(PooledBlockBuffer));
            return new Memory<byte>(array, offset, _length);
        }
    }

    internal void OnRented(int length)
    {
        _length = length;
        Volatile.Write(ref _rented, 1);
    }

    public void Dispose()
    {
        var state = Interlocked.Exchange(ref _rented, 0);
        if (state == 1) owner.Return(this);
        else if (state == Abandoned) owner.TakeBack(this);
    }

    private const int Abandoned = 2;

    /// <summary>The kernel still holds this buffer's pages (a reply sent by reference that a client we are done with
    /// has not read): the pool's reservation is released now, as if returned, but the memory is kept out of use
    /// until <see cref="Dispose"/>, once the client has read or dropped it. Meanwhile the pool grows rather than
    /// reuse it.</summary>
    internal void Abandon()
    {
        if (Interlocked.CompareExchange(ref _rented, Abandoned, 1) == 1) owner.ReleaseReservation();
    }

    public int Capacity => capacity;
}
