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
        if (Interlocked.Exchange(ref _rented, 0) == 1)
            owner.Return(this);
    }

    public int Capacity => capacity;
}
