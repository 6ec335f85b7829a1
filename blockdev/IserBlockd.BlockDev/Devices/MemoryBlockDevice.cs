using IserBlockd.BlockDev.Buffers;

namespace IserBlockd.BlockDev.Devices;

/// <summary>
/// A sparse in-memory block device: storage is a table of 64 KiB chunks allocated on first write
/// (pinned, so the GC never moves them); never-written and trimmed chunks read as zeroes. Safe for
/// concurrent use from many connections; every operation completes synchronously.
/// </summary>
/// <remarks>With <see cref="MemoryBlockDeviceOptions.TrackDurability"/> it also models a volatile write
/// cache: completed writes stay volatile until a FLUSH (or FUA) copies them to a durable image, and
/// <see cref="SimulatePowerLoss"/> throws away whatever was not durable.</remarks>
public sealed class MemoryBlockDevice : IBlockDevice
{
    private const int ChunkShift = 16;
    private const int ChunkSize = 1 << ChunkShift;

    private readonly byte[]?[] _chunks;
    private readonly byte[]?[]? _durable;
    private readonly object _durabilityLock = new();
    private HashSet<long> _dirty = [];
    private long _reads, _writes, _fuaWrites, _bytesWritten, _flushes, _trims, _writeZeroes;

    public MemoryBlockDevice(long size, MemoryBlockDeviceOptions? options = null)
    {
        options ??= new MemoryBlockDeviceOptions();
        if (options.LogicalBlockSize <= 0 || !IsPowerOfTwo(options.LogicalBlockSize))
            throw new ArgumentOutOfRangeException(nameof(options), "LogicalBlockSize must be a power of two.");
        if (size <= 0 || size % options.LogicalBlockSize != 0)
            throw new ArgumentOutOfRangeException(nameof(size), size, "Size must be a positive multiple of the logical block size.");
        Geometry = new BlockGeometry(size, options.LogicalBlockSize, options.PreferredBlockSize, options.MaxTransferBytes);
        Features = options.Features;
        Buffers = options.Buffers ?? new PinnedBlockBufferPool(new PinnedBlockBufferPoolOptions
        {
            MaxBufferSize = Math.Max(PinnedBlockBufferPool.Alignment, options.MaxTransferBytes),
            MaxRentedBytes = Math.Max(512L << 20, 4L * options.MaxTransferBytes),
        });
        var chunkCount = (size + ChunkSize - 1) >> ChunkShift;
        _chunks = new byte[]?[chunkCount];
        if (options.TrackDurability) _durable = new byte[]?[chunkCount];
    }

    public BlockGeometry Geometry { get; }
    public BlockDeviceFeatures Features { get; }
    public IBlockBufferProvider Buffers { get; }

    public MemoryBlockDeviceStatistics Statistics => new(
        Interlocked.Read(ref _reads), Interlocked.Read(ref _writes), Interlocked.Read(ref _fuaWrites),
        Interlocked.Read(ref _bytesWritten), Interlocked.Read(ref _flushes), Interlocked.Read(ref _trims),
        Interlocked.Read(ref _writeZeroes));

    /// <summary>Bytes of chunk storage currently allocated.</summary>
    public long AllocatedBytes => _chunks.LongCount(c => c != null) * ChunkSize;

    public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        CheckRange(offset, destination.Length);
        Interlocked.Increment(ref _reads);
        Read(offset, destination.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Synchronous read, for tests that inspect the contents.</summary>
    public void Read(long offset, Span<byte> destination)
    {
        CheckRange(offset, destination.Length);
        while (!destination.IsEmpty)
        {
            var (index, within, count) = Locate(offset, destination.Length);
            var chunk = Volatile.Read(ref _chunks[index]);
            if (chunk == null) destination[..count].Clear();
            else chunk.AsSpan(within, count).CopyTo(destination);
            destination = destination[count..];
            offset += count;
        }
    }

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken)
    {
        CheckWritable();
        CheckRange(offset, source.Length);
        Interlocked.Increment(ref _writes);
        Interlocked.Add(ref _bytesWritten, source.Length);
        if (fua) Interlocked.Increment(ref _fuaWrites);
        Write(offset, source.Span);
        Completed(offset, source.Length, fua);
        return ValueTask.CompletedTask;
    }

    /// <summary>Synchronous write that bypasses statistics and durability tracking (test setup).</summary>
    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        CheckRange(offset, source.Length);
        while (!source.IsEmpty)
        {
            var (index, within, count) = Locate(offset, source.Length);
            source[..count].CopyTo(ChunkFor(index).AsSpan(within, count));
            source = source[count..];
            offset += count;
        }
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _flushes);
        if (_durable != null)
        {
            HashSet<long> dirty;
            lock (_durabilityLock)
            {
                // Writes completed before this point are in the set; later ones start a new set.
                dirty = _dirty;
                _dirty = [];
            }
            foreach (var index in dirty) Persist(index);
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask TrimAsync(long offset, long length, CancellationToken cancellationToken)
    {
        CheckWritable();
        CheckRange(offset, length);
        Interlocked.Increment(ref _trims);
        Deallocate(offset, length);
        Completed(offset, length, fua: false);
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteZeroesAsync(long offset, long length, bool mayUnmap, CancellationToken cancellationToken)
    {
        CheckWritable();
        CheckRange(offset, length);
        Interlocked.Increment(ref _writeZeroes);
        if (mayUnmap)
        {
            Deallocate(offset, length);
        }
        else
        {
            // NO_HOLE: the range must stay provisioned, so allocate and clear instead of dropping chunks.
            for (long position = offset, remaining = length; remaining > 0;)
            {
                var (index, within, count) = Locate(position, remaining);
                ChunkFor(index).AsSpan(within, count).Clear();
                position += count;
                remaining -= count;
            }
        }
        Completed(offset, length, fua: false);
        return ValueTask.CompletedTask;
    }

    /// <summary>Chunks never written (or trimmed whole) are holes that read as zeroes; the rest is data.</summary>
    public ValueTask<int> GetAllocationAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken)
    {
        CheckRange(offset, length);
        var span = extents.Span;
        var count = 0;
        while (length > 0 && count < span.Length)
        {
            var (index, _, run) = Locate(offset, length);
            var state = Volatile.Read(ref _chunks[index]) == null ? BlockAllocation.Hole | BlockAllocation.Zero : BlockAllocation.Data;
            if (count > 0 && span[count - 1].State == state) span[count - 1] = span[count - 1] with { Length = span[count - 1].Length + run };
            else span[count++] = new BlockExtent(run, state);
            offset += run;
            length -= run;
        }
        return ValueTask.FromResult(count);
    }

    /// <summary>Everything is in memory already.</summary>
    public ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>True when the chunk holding <paramref name="offset"/> has storage (for NO_HOLE/trim tests).</summary>
    public bool IsAllocated(long offset) => Volatile.Read(ref _chunks[offset >> ChunkShift]) != null;

    /// <summary>Loses everything that was not made durable by FLUSH or FUA, as a crash would.
    /// Only with <see cref="MemoryBlockDeviceOptions.TrackDurability"/>; not safe during I/O.</summary>
    public void SimulatePowerLoss()
    {
        if (_durable == null) throw new InvalidOperationException("The device was created without TrackDurability.");
        lock (_durabilityLock)
        {
            for (var i = 0; i < _chunks.Length; i++)
                _chunks[i] = _durable[i] is { } durable ? (byte[])durable.Clone() : null;
            _dirty.Clear();
        }
    }

    private void Completed(long offset, long length, bool fua)
    {
        if (_durable == null || length == 0) return;
        var first = offset >> ChunkShift;
        var last = (offset + length - 1) >> ChunkShift;
        if (fua)
        {
            for (var index = first; index <= last; index++) Persist(index);
            return;
        }
        lock (_durabilityLock)
        {
            for (var index = first; index <= last; index++) _dirty.Add(index);
        }
    }

    private void Persist(long index)
    {
        lock (_durabilityLock)
        {
            var current = Volatile.Read(ref _chunks[index]);
            if (current == null) _durable![index] = null;
            else current.AsSpan().CopyTo(_durable![index] ??= new byte[ChunkSize]);
        }
    }

    private void Deallocate(long offset, long length)
    {
        while (length > 0)
        {
            var (index, within, count) = Locate(offset, length);
            if (count == ChunkSize) Volatile.Write(ref _chunks[index], null);
            else Volatile.Read(ref _chunks[index])?.AsSpan(within, count).Clear();
            offset += count;
            length -= count;
        }
    }

    private byte[] ChunkFor(long index)
    {
        var chunk = Volatile.Read(ref _chunks[index]);
        if (chunk != null) return chunk;
        var fresh = GC.AllocateArray<byte>(ChunkSize, pinned: true);
        return Interlocked.CompareExchange(ref _chunks[index], fresh, null) ?? fresh;
    }

    private static (long Index, int Within, int Count) Locate(long offset, long length)
    {
        var within = (int)(offset & (ChunkSize - 1));
        return (offset >> ChunkShift, within, (int)Math.Min(length, ChunkSize - within));
    }

    private void CheckRange(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > Geometry.Size - length)
            throw new BlockDeviceException(BlockError.InvalidArgument,
                $"Range {offset}+{length} is outside the device of {Geometry.Size} bytes.");
    }

    private void CheckWritable()
    {
        if ((Features & BlockDeviceFeatures.ReadOnly) != 0)
            throw new BlockDeviceException(BlockError.PermissionDenied, "The device is read-only.");
    }

    private static bool IsPowerOfTwo(int value) => (value & (value - 1)) == 0;
}
