namespace IserBlockd.BlockDev.Buffers;

/// <summary>
/// How much of one buffer pool network clients may hold, derived from what the pool can hand out at once: all
/// clients of every export together half of it (so the kernel devices renting from the same pool always keep the
/// other half), one export's clients a quarter, one connection an eighth. The daemon's 512 MiB TCP pool gives
/// 256 / 128 / 64 MiB; an iSER device's registered pool of about 45 MiB gives about 22 / 11 / 5.6 MiB, so a
/// client that stops reading its replies can never pin the registered memory that a kernel device or another
/// export on the same RDMA device needs.
/// </summary>
/// <remarks>One instance per pool, shared by every NBD server whose exports rent from it (the
/// <see cref="Clients"/> budget is counted across all of them).</remarks>
public sealed class BufferPoolShares
{
    /// <param name="capacityBytes">Bytes the pool can have rented out at once.</param>
    public BufferPoolShares(long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacityBytes, 8);
        CapacityBytes = capacityBytes;
        Clients = new ByteBudget(capacityBytes / 2);
    }

    public long CapacityBytes { get; }

    /// <summary>Payload bytes every network client of every export on this pool may hold together.</summary>
    public ByteBudget Clients { get; }

    /// <summary>Payload bytes the clients of one export may hold together.</summary>
    public long PerExport => CapacityBytes / 4;

    /// <summary>Payload bytes one client connection may hold (a larger request is still admitted alone).</summary>
    public long PerConnection => CapacityBytes / 8;
}
