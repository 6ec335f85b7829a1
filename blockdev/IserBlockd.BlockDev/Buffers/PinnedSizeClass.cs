namespace IserBlockd.BlockDev.Buffers;

/// <summary>Free buffers of one size; a stack, so the most recently used (cache-warm) buffer goes out first.</summary>
internal sealed class PinnedSizeClass(PinnedBlockBufferPool pool, int bufferSize, int slabSize)
{
    private PooledBlockBuffer[] _free = new PooledBlockBuffer[16];
    private int _freeCount;
    private long _allocatedBytes;

    public int BufferSize { get; } = bufferSize;

    public long AllocatedBytes => Volatile.Read(ref _allocatedBytes);

    public PooledBlockBuffer Rent(int length)
    {
        PooledBlockBuffer? buffer = null;
        lock (this)
        {
            if (_freeCount > 0)
            {
                buffer = _free[--_freeCount];
                _free[_freeCount] = null!;
            }
        }
        buffer ??= Grow();
        buffer.OnRented(length);
        return buffer;
    }

    /// <summary>Takes back a buffer and releases its reservation in the pool (which may wake a waiter).</summary>
    public void Return(PooledBlockBuffer buffer)
    {
        Push(buffer);
        pool.Release(BufferSize);
    }

    /// <summary>An abandoned buffer's reservation (<see cref="PooledBlockBuffer.Abandon"/>).</summary>
    public void ReleaseReservation() => pool.Release(BufferSize);

    /// <summary>Takes back an abandoned buffer, whose reservation was released already.</summary>
    public void TakeBack(PooledBlockBuffer buffer) => Push(buffer);

    private void Push(PooledBlockBuffer buffer)
    {
        lock (this)
        {
            if (_freeCount == _free.Length) Array.Resize(ref _free, _free.Length * 2);
            _free[_freeCount++] = buffer;
        }
    }

    private PooledBlockBuffer Grow()
    {
        var perSlab = Math.Max(1, slabSize / BufferSize);
        var bytes = perSlab * BufferSize;
        var slab = GC.AllocateUninitializedArray<byte>(bytes + PinnedBlockBufferPool.Alignment, pinned: true);
        var start = AlignedStart(slab);
        Interlocked.Add(ref _allocatedBytes, bytes);
        for (var i = 1; i < perSlab; i++)
            Push(new PooledBlockBuffer(this, slab, start + i * BufferSize, BufferSize));
        return new PooledBlockBuffer(this, slab, start, BufferSize);
    }

    private static unsafe int AlignedStart(byte[] slab)
    {
        fixed (byte* p = slab)
        {
            var misalignment = (int)((nuint)p % PinnedBlockBufferPool.Alignment);
            return misalignment == 0 ? 0 : PinnedBlockBufferPool.Alignment - misalignment;
        }
    }
}
