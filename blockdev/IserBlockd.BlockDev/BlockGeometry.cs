namespace IserBlockd.BlockDev;

/// <summary>Size and block sizes of a device, all in bytes.</summary>
/// <param name="Size">Capacity in bytes (a multiple of <paramref name="LogicalBlockSize"/>).</param>
/// <param name="LogicalBlockSize">Smallest addressable unit (512 or 4096 for SCSI LUNs); the NBD minimum block size.</param>
/// <param name="PreferredBlockSize">Physical block / optimal granularity; the NBD preferred block size.</param>
/// <param name="MaxTransferBytes">Largest single request the device takes; the NBD maximum block size.</param>
public readonly record struct BlockGeometry(long Size, int LogicalBlockSize, int PreferredBlockSize, int MaxTransferBytes);
