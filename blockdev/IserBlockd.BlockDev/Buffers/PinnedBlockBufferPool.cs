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
    private readonly ByteBudget _budget;

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
        _budget = new ByteBudget(_options.MaxRentedBytes);
        Shares = new BufferPoolShares(_options.MaxRentedBytes);
    }

    /// <summary>Network clients' shares of <see cref="PinnedBlockBufferPoolOptions.MaxRentedBytes"/>.</summary>
    public BufferPoolShares Shares { get; }

    public int MaxBufferSize => _options.MaxBufferSize;

    /// <summary>Bytes currently rented (rounded up to size classes).</summary>
    public long RentedBytes => _budget.Used;

    /// <summary>Pinned bytes allocated so far (they are kept for reuse).</summary>
    public long AllocatedBytes => _classes.Sum(c => c.AllocatedBytes);

    public ValueTask<IMemoryOwner<byte>> RentAsync(int length, CancellationToken cancellationToken)
    {
        if ((uint)length > (uint)_options.MaxBufferSize)
            throw new ArgumentOutOfRangeException(nameof(length), length,
                $"Buffers are limited to {_options.MaxBufferSize} bytes.");
        var sizeClass = ClassFor(length);
        // Every request fits the budget (MaxRentedBytes holds at least one largest buffer), so the budget's
        // charge is the class size itself.
        var reserved = _budget.AcquireAsync(sizeClass.BufferSize, cancellationToken);
        if (reserved.IsCompletedSuccessfully)
            return new ValueTask<IMemoryOwner<byte>>(sizeClass.Rent(length));
        return RentWhenReservedAsync(reserved, length, sizeClass);
    }

    private static async ValueTask<IMemoryOwner<byte>> RentWhenReservedAsync(ValueTask reserved, int length, PinnedSizeClass sizeClass)
    {
        await reserved.ConfigureAwait(false);
        return sizeClass.Rent(length);
    }

    internal void Release(int bytes) => _budget.Release(bytes);

    private PinnedSizeClass ClassFor(int length)
    {
        var rounded = Math.Max(1u << MinimumClassShift, BitOperations.RoundUpToPowerOf2((uint)Math.Max(length, 1)));
        return _classes[BitOperations.Log2(rounded) - MinimumClassShift];
    }
}
