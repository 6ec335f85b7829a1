using System.Buffers;
using System.Numerics;

namespace IserBlockd.BlockDev.Buffers;

/// <summary>
/// The default <see cref="IBlockBufferProvider"/>: power-of-two size classes of pinned, 4 KiB-aligned
/// memory on the pinned object heap, each buffer with its own pooled owner object. After warm-up,
/// renting and returning allocate nothing. When <see cref="PinnedBlockBufferPoolOptions.MaxRentedBytes"/>
/// are out, renters wait (FIFO) for returns instead of failing.
/// </summary>
public sealed class PinnedBlockBufferPool : IBlockBufferProvider
{
    internal const int Alignment = 4096;
    private const int MinimumClassShift = 12; // 4 KiB

    private readonly PinnedBlockBufferPoolOptions _options;
    private readonly PinnedSizeClass[] _classes;
    private readonly Queue<Waiter> _waiters = new();
    private long _rentedBytes;
    private int _waiterCount;

    public PinnedBlockBufferPool(PinnedBlockBufferPoolOptions? options = null)
    {
        _options = options ?? new PinnedBlockBufferPoolOptions();
        if (_options.MaxBufferSize < Alignment || _options.MaxBufferSize > 1 << 30)
            throw new ArgumentOutOfRangeException(nameof(options), "MaxBufferSize must be between 4 KiB and 1 GiB.");
        if (_options.MaxRentedBytes < _options.MaxBufferSize)
            throw new ArgumentOutOfRangeException(nameof(options), "MaxRentedBytes must hold at least one buffer of MaxBufferSize.");
        var largestShift = BitOperations.Log2(BitOperations.RoundUpToPowerOf2((uint)_options.MaxBufferSize));
        _classes = new PinnedSizeClass[largestShift - MinimumClassShift + 1];
        for (var i = 0; i < _classes.Length; i++)
            _classes[i] = new PinnedSizeClass(this, 1 << (MinimumClassShift + i), _options.SlabSize);
    }

    public int MaxBufferSize => _options.MaxBufferSize;

    /// <summary>Bytes currently rented (rounded up to size classes).</summary>
    public long RentedBytes => Volatile.Read(ref _rentedBytes);

    /// <summary>Pinned bytes allocated so far (they are kept for reuse).</summary>
    public long AllocatedBytes => _classes.Sum(c => c.AllocatedBytes);

    public ValueTask<IMemoryOwner<byte>> RentAsync(int length, CancellationToken cancellationToken)
    {
        if ((uint)length > (uint)_options.MaxBufferSize)
            throw new ArgumentOutOfRangeException(nameof(length), length,
                $"Buffers are limited to {_options.MaxBufferSize} bytes.");
        var sizeClass = ClassFor(length);
        if (Volatile.Read(ref _waiterCount) == 0 && TryReserve(sizeClass.BufferSize))
            return new ValueTask<IMemoryOwner<byte>>(sizeClass.Rent(length));
        return RentSlowAsync(length, sizeClass, cancellationToken);
    }

    private async ValueTask<IMemoryOwner<byte>> RentSlowAsync(int length, PinnedSizeClass sizeClass, CancellationToken cancellationToken)
    {
        Waiter waiter;
        lock (_waiters)
        {
            // Count ourselves before trying, so a concurrent return either sees us or frees room we see.
            Interlocked.Increment(ref _waiterCount);
            if (_waiters.Count == 0 && TryReserve(sizeClass.BufferSize))
            {
                Interlocked.Decrement(ref _waiterCount);
                return sizeClass.Rent(length);
            }
            waiter = new Waiter(sizeClass.BufferSize);
            _waiters.Enqueue(waiter);
        }
        await using (cancellationToken.Register(static w => ((Waiter)w!).Completion.TrySetCanceled(), waiter).ConfigureAwait(false))
        {
            try
            {
                await waiter.Completion.Task.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                lock (_waiters)
                {
                    // Granted at the same moment as cancelled: Release saw the cancellation (TrySetResult failed)
                    // and took its grant back already; releasing here too would let the pool over-commit.
                    if (!waiter.Granted) waiter.Abandoned = true;
                }
                throw;
            }
        }
        return sizeClass.Rent(length);
    }

    private bool TryReserve(int bytes)
    {
        var after = Interlocked.Add(ref _rentedBytes, bytes);
        if (after <= _options.MaxRentedBytes) return true;
        Interlocked.Add(ref _rentedBytes, -bytes);
        return false;
    }

    internal void Release(int bytes)
    {
        Interlocked.Add(ref _rentedBytes, -bytes);
        if (Volatile.Read(ref _waiterCount) == 0) return;
        lock (_waiters)
        {
            while (_waiters.TryPeek(out var head))
            {
                if (head.Abandoned)
                {
                    _waiters.Dequeue();
                    Interlocked.Decrement(ref _waiterCount);
                    continue;
                }
                if (!TryReserve(head.Bytes)) break;
                _waiters.Dequeue();
                Interlocked.Decrement(ref _waiterCount);
                head.Granted = true;
                if (!head.Completion.TrySetResult())
                    Interlocked.Add(ref _rentedBytes, -head.Bytes); // cancelled meanwhile
            }
        }
    }

    private PinnedSizeClass ClassFor(int length)
    {
        var rounded = Math.Max(1u << MinimumClassShift, BitOperations.RoundUpToPowerOf2((uint)Math.Max(length, 1)));
        return _classes[BitOperations.Log2(rounded) - MinimumClassShift];
    }

    private sealed class Waiter(int bytes)
    {
        public readonly int Bytes = bytes;
        public readonly TaskCompletionSource Completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public bool Granted;
        public bool Abandoned;
    }
}
