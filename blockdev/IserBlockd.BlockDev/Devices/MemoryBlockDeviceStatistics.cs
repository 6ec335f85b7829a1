namespace IserBlockd.BlockDev.Devices;

/// <summary>Operation counts of a <see cref="MemoryBlockDevice"/>, for tests that check what reached the device.</summary>
public readonly record struct MemoryBlockDeviceStatistics(
    long Reads, long Writes, long FuaWrites, long BytesWritten, long Flushes, long Trims, long WriteZeroes);
