namespace IserBlockd.BlockDev.Buffers;

public sealed record PinnedBlockBufferPoolOptions
{
    /// <summary>Largest single buffer; the device's maximum transfer must not exceed it.</summary>
    public int MaxBufferSize { get; init; } = 32 << 20;

    /// <summary>Bytes that may be rented at once; further rents wait for returns (back-pressure).</summary>
    public long MaxRentedBytes { get; init; } = 512L << 20;

    /// <summary>Small buffers are carved out of slabs of this size, so the pool holds few large objects.</summary>
    public int SlabSize { get; init; } = 1 << 20;
}
