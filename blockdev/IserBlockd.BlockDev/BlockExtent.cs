namespace IserBlockd.BlockDev;

/// <summary>How a run of blocks is provisioned (the NBD <c>base:allocation</c> bits have the same values).</summary>
[Flags]
public enum BlockAllocation : uint
{
    /// <summary>Allocated: reads return whatever was written.</summary>
    Data = 0,
    /// <summary>Not allocated (deallocated or anchored on a thin device).</summary>
    Hole = 1 << 0,
    /// <summary>Reads return zeroes.</summary>
    Zero = 1 << 1,
}

/// <summary>A run of <paramref name="Length"/> bytes with one provisioning state.</summary>
public readonly record struct BlockExtent(long Length, BlockAllocation State);
