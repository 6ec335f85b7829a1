namespace IserBlockd.BlockDev;

/// <summary>
/// A block device as the NBD side sees it: byte offsets, a size, block sizes and a few
/// operations. It knows nothing of SCSI or iSCSI; the daemon adapts a LUN to it.
/// </summary>
/// <remarks>
/// Contract for implementations:
/// <list type="bullet">
/// <item>Offsets and lengths passed in are already validated against <see cref="Geometry"/>: in range
/// and aligned to <see cref="BlockGeometry.LogicalBlockSize"/>; reads and writes are not over
/// <see cref="BlockGeometry.MaxTransferBytes"/>. Trim, write-zeroes, allocation and prefetch ranges may be longer (NBD does not
/// bound them by the maximum block size): the device splits them to its own limits (UNMAP, WRITE SAME).</item>
/// <item>Lengths are never zero; the server answers zero-length requests itself.</item>
/// <item>A completed <see cref="WriteAsync"/> means the device accepted the data; with
/// <c>fua</c> it means the data is durable. <c>fua</c> is only passed when the device has
/// <see cref="BlockDeviceFeatures.Fua"/>; FUA on anything else is emulated by the caller with a flush. A completed <see cref="FlushAsync"/> means every
/// write that completed before the flush was issued is durable.</item>
/// <item>Failures are reported by throwing <see cref="BlockDeviceException"/> with the errno
/// the client should see. Any other exception is treated as EIO.</item>
/// <item>Many calls may be in flight at once, from several connections.</item>
/// <item>Calls (and <see cref="IBlockBufferProvider.RentAsync"/>) come from the NBD server's I/O threads,
/// which serve many connections: they must not block. Return a pending task and complete it later
/// (from any thread) rather than waiting inside the call.</item>
/// </list>
/// </remarks>
public interface IBlockDevice
{
    BlockGeometry Geometry { get; }

    BlockDeviceFeatures Features { get; }

    /// <summary>Where request payloads live. For iSER this hands out pre-registered RDMA memory,
    /// so WRITE payloads are received from the NBD socket straight into it and READ data is
    /// placed there by the target.</summary>
    IBlockBufferProvider Buffers { get; }

    ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken);

    ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken);

    ValueTask FlushAsync(CancellationToken cancellationToken);

    /// <summary>Discard (NBD TRIM). Only called when <see cref="BlockDeviceFeatures.Trim"/> is set.</summary>
    ValueTask TrimAsync(long offset, long length, CancellationToken cancellationToken);

    /// <summary>Write zeroes without sending them (WRITE SAME, a punched hole). <paramref name="mayUnmap"/> is
    /// false for NBD_CMD_FLAG_NO_HOLE. Only called when <see cref="BlockDeviceFeatures.WriteZeroes"/> is set.</summary>
    ValueTask WriteZeroesAsync(long offset, long length, bool mayUnmap, CancellationToken cancellationToken);

    /// <summary>Describes how the range from <paramref name="offset"/> is provisioned: fills
    /// <paramref name="extents"/> with consecutive extents starting at <paramref name="offset"/> (at least one;
    /// together at most <paramref name="length"/> bytes, each a multiple of the logical block size) and
    /// returns how many. Only called when <see cref="BlockDeviceFeatures.AllocationStatus"/> is set.</summary>
    ValueTask<int> GetAllocationAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken);

    /// <summary>Reads the range into the device's cache ahead of use; a hint, whose failure costs nothing.
    /// The range may be longer than <see cref="BlockGeometry.MaxTransferBytes"/>. Only called when
    /// <see cref="BlockDeviceFeatures.Prefetch"/> is set.</summary>
    ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken);

    /// <summary>The server is about to start several requests that arrived together: the device may hold back what it
    /// sends for them until <see cref="EndBurst"/>, to send them at once. Calls pair up, may nest (several
    /// connections), and never span a wait: the server ends the burst before it awaits anything.</summary>
    void BeginBurst()
    {
    }

    /// <summary>Ends a <see cref="BeginBurst"/>: what was held back goes out now.</summary>
    void EndBurst()
    {
    }
}
