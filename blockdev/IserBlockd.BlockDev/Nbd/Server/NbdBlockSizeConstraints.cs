using System.Numerics;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// The minimum, preferred and maximum block sizes an export advertises (doc/proto.md, "Block size
/// constraints"), derived from the device geometry so that they obey the protocol's rules.
/// </summary>
public readonly record struct NbdBlockSizeConstraints(uint Minimum, uint Preferred, uint Maximum)
{
    public const uint LargestMinimum = 1 << 16;

    public static NbdBlockSizeConstraints FromGeometry(BlockGeometry geometry)
    {
        var minimum = geometry.LogicalBlockSize;
        if (minimum <= 0 || !BitOperations.IsPow2(minimum) || minimum > LargestMinimum)
            throw new ArgumentException($"Logical block size {minimum} is not a power of two up to 64 KiB, as NBD requires.", nameof(geometry));
        if (geometry.Size <= 0 || geometry.Size % minimum != 0)
            throw new ArgumentException($"Size {geometry.Size} is not a positive multiple of the logical block size {minimum}.", nameof(geometry));
        // Preferred: a power of two at least max(minimum, 512).
        var preferred = BitOperations.RoundUpToPowerOf2((uint)Math.Max(Math.Max(geometry.PreferredBlockSize, minimum), 512));
        // Maximum: a multiple of the minimum, at least min(preferred, size).
        var maximum = geometry.MaxTransferBytes <= 0 ? uint.MaxValue : (uint)geometry.MaxTransferBytes / (uint)minimum * (uint)minimum;
        if (maximum < Math.Min(preferred, (ulong)geometry.Size))
            throw new ArgumentException($"Maximum transfer {geometry.MaxTransferBytes} is smaller than the preferred block size {preferred}.", nameof(geometry));
        return new NbdBlockSizeConstraints((uint)minimum, preferred, maximum);
    }
}
