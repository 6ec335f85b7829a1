using System.Numerics;

namespace IserBlockd.BlockDev.Kernel.Ublk;

/// <summary>The ublk device's parameters from a block device's geometry and features, as the NBD path advertises them.</summary>
internal static class UblkParamsBuilder
{
    /// <summary>Trim and write-zeroes ranges the kernel may send at once (the device splits them to its own limits).</summary>
    public const uint MaxDiscardSectors = 1u << 22;   // 2 GiB

    /// <summary>The largest request: the device's maximum transfer, within what one user-copy position can address.</summary>
    public static int MaxIoBytes(BlockGeometry geometry, int pageSize)
    {
        var bytes = Math.Min(geometry.MaxTransferBytes, UblkCommands.MaxIoBufferBytes);
        return Math.Max(pageSize, bytes / pageSize * pageSize);
    }

    public static unsafe UblkParams Build(BlockGeometry geometry, BlockDeviceFeatures features, int maxIoBytes)
    {
        var logical = geometry.LogicalBlockSize;
        var physical = Math.Max(logical, geometry.PreferredBlockSize);
        if (!BitOperations.IsPow2(logical) || logical < 512) throw new ArgumentException($"logical block size {logical} is not a power of two >= 512");
        if (!BitOperations.IsPow2(physical)) physical = logical;
        var attributes = UblkAttributes.None;
        if (features.HasFlag(BlockDeviceFeatures.ReadOnly)) attributes |= UblkAttributes.ReadOnly;
        if (features.HasFlag(BlockDeviceFeatures.Rotational)) attributes |= UblkAttributes.Rotational;
        if (features.HasFlag(BlockDeviceFeatures.Flush))
        {
            attributes |= UblkAttributes.VolatileCache;
            if (features.HasFlag(BlockDeviceFeatures.Fua)) attributes |= UblkAttributes.Fua;
        }
        var p = new UblkParams
        {
            Length = (uint)sizeof(UblkParams),
            Types = UblkParamTypes.Basic,
            Basic = new UblkBasicParams
            {
                Attributes = attributes,
                LogicalBlockShift = (byte)BitOperations.Log2((uint)logical),
                PhysicalBlockShift = (byte)BitOperations.Log2((uint)physical),
                IoMinimumShift = (byte)BitOperations.Log2((uint)logical),
                IoOptimalShift = (byte)BitOperations.Log2((uint)physical),
                MaxSectors = (uint)(maxIoBytes >> 9),
                DeviceSectors = (ulong)geometry.Size >> 9,
            },
        };
        var trim = features.HasFlag(BlockDeviceFeatures.Trim) && !features.HasFlag(BlockDeviceFeatures.ReadOnly);
        var zeroes = features.HasFlag(BlockDeviceFeatures.WriteZeroes) && !features.HasFlag(BlockDeviceFeatures.ReadOnly);
        if (trim || zeroes)
        {
            p.Types |= UblkParamTypes.Discard;
            p.Discard = new UblkDiscardParams
            {
                DiscardGranularity = (uint)physical,
                MaxDiscardSectors = trim ? MaxDiscardSectors : 0,
                MaxWriteZeroesSectors = zeroes ? MaxDiscardSectors : 0,
                MaxDiscardSegments = 1,
            };
        }
        return p;
    }
}
