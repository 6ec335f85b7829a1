namespace IserBlockd.BlockDev.Devices;

public sealed record MemoryBlockDeviceOptions
{
    public int LogicalBlockSize { get; init; } = 512;
    public int PreferredBlockSize { get; init; } = 4096;
    public int MaxTransferBytes { get; init; } = 32 << 20;

    public BlockDeviceFeatures Features { get; init; } =
        BlockDeviceFeatures.Flush | BlockDeviceFeatures.Fua | BlockDeviceFeatures.Trim |
        BlockDeviceFeatures.WriteZeroes | BlockDeviceFeatures.MultiConnection | BlockDeviceFeatures.AllocationStatus;

    /// <summary>Model a volatile write cache: keep a durable copy that only FLUSH and FUA update, so a
    /// test can <see cref="MemoryBlockDevice.SimulatePowerLoss"/> and see what was really durable.
    /// Costs a copy per flushed chunk; off for benchmarks.</summary>
    public bool TrackDurability { get; init; }

    /// <summary>Payload buffers; a private <see cref="Buffers.PinnedBlockBufferPool"/> when null.</summary>
    public IBlockBufferProvider? Buffers { get; init; }
}
