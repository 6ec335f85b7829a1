namespace IserBlockd.BlockDev.Devices;

public sealed record FileBlockDeviceOptions
{
    /// <summary>Creates (or grows, sparsely) the file to this size; null keeps the file's own size.</summary>
    public long? Size { get; init; }

    public int LogicalBlockSize { get; init; } = 512;
    public int PreferredBlockSize { get; init; } = 4096;
    public int MaxTransferBytes { get; init; } = 32 << 20;
    public bool ReadOnly { get; init; }

    /// <summary>Payload buffers; a private <see cref="Buffers.PinnedBlockBufferPool"/> when null.</summary>
    public IBlockBufferProvider? Buffers { get; init; }
}
