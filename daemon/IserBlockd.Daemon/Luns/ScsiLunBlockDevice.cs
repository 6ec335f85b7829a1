using System.Buffers;
using System.Runtime.CompilerServices;
using IserBlockd.BlockDev;
using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Daemon.Luns;

/// <summary>
/// The LUN adapter: an iSCSI LUN as the <see cref="IBlockDevice"/> the NBD side
/// serves. READ/WRITE(16) with FUA, SYNCHRONIZE CACHE for FLUSH, UNMAP for TRIM, WRITE SAME(16) for write
/// zeroes; geometry and features from what the LUN reports; SCSI failures become errno values. The I/O
/// path awaits pooled value tasks end to end and allocates nothing per request.
/// </summary>
/// <remarks>
/// Connection loss is not visible here: the session keeps the commands and re-issues them after
/// reinstatement, so a request simply takes longer; only when the replacement timeout passes do they
/// fail (EIO).
/// </remarks>
public sealed class ScsiLunBlockDevice : IBlockDevice
{
    /// <summary>The NBD maximum block size we advertise: larger requests than the LUN takes are split by <see cref="ScsiLun"/>.</summary>
    public const int MaxRequestBytes = 32 << 20;

    private readonly ScsiLun _lun;
    private readonly bool _writeZeroesMayUnmap;
    private volatile bool _lbaStatusRefused, _preFetchRefused;

    private ScsiLunBlockDevice(ScsiLun lun, BlockGeometry geometry, BlockDeviceFeatures features, IBlockBufferProvider buffers, CachingModePage caching)
    {
        _lun = lun;
        Geometry = geometry;
        lun.CapacityChanged += (_, e) => Geometry = Geometry with { Size = (long)e.SizeBytes };
        lun.ModeParametersChanged += (_, _) => _ = RereadCachingAsync();
        Features = features;
        Buffers = buffers;
        Caching = caching;
        _writeZeroesMayUnmap = lun.SupportsWriteSameUnmap && lun.UnmapReadsZeroes;
    }

    /// <summary>What the LUN reports; its size follows a capacity change (unit attention 2A/09, <c>iserblockctl rescan</c>),
    /// so NBD connections made after it see the new size.</summary>
    public BlockGeometry Geometry { get; private set; }
    public BlockDeviceFeatures Features { get; }
    public IBlockBufferProvider Buffers { get; }
    public LunStatistics Statistics { get; } = new();
    /// <summary>The Caching mode page as last read: at creation and again after MODE PARAMETERS CHANGED (2A/01).
    /// FLUSH is offered whatever it says (see <see cref="CreateAsync"/>), so a cache switched on later is still flushed.</summary>
    public CachingModePage Caching { get; private set; }

    /// <summary>Reads the caching page again after the target reported changed mode parameters (2A/01). A failure
    /// keeps the page as it was: FLUSH stays offered either way.</summary>
    private async Task RereadCachingAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            Caching = await CachingModePage.ReadAsync(_lun, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IserBlockd.Iscsi.IscsiException or OperationCanceledException)
        {
        }
    }
    public ScsiLun Lun => _lun;

    /// <summary>Builds the device from an opened LUN (which has already been probed), asking the LUN for
    /// its cache mode and rotation rate.</summary>
    /// <param name="maxTransferBytes">The largest NBD request to accept: what <paramref name="buffers"/> can hand out
    /// (larger than the LUN takes in one command is fine: <see cref="ScsiLun"/> splits).</param>
    public static async Task<ScsiLunBlockDevice> CreateAsync(ScsiLun lun, bool readOnly, IBlockBufferProvider buffers, CancellationToken cancellationToken,
        int maxTransferBytes = MaxRequestBytes)
    {
        var caching = await CachingModePage.ReadAsync(lun, cancellationToken).ConfigureAwait(false);
        var rotational = await IsRotationalAsync(lun, cancellationToken).ConfigureAwait(false);

        var features = BlockDeviceFeatures.MultiConnection; // one session carries every connection; SYNCHRONIZE CACHE covers them all
        if (readOnly || caching.WriteProtected) features |= BlockDeviceFeatures.ReadOnly;
        // FLUSH and FUA whatever the write cache is now: a kernel device's flags cannot change while it lives, and a
        // cache switched on later (MODE SELECT, unit attention 2A/01) must not leave acknowledged writes volatile.
        // With the cache off SYNCHRONIZE CACHE is a cheap no-op at the target.
        features |= BlockDeviceFeatures.Flush;
        if (caching.SupportsFua) features |= BlockDeviceFeatures.Fua;
        if (lun.SupportsUnmap || lun.SupportsWriteSameUnmap) features |= BlockDeviceFeatures.Trim;
        if (lun.SupportsWriteSameUnmap) features |= BlockDeviceFeatures.WriteZeroes;
        if (rotational) features |= BlockDeviceFeatures.Rotational;
        // Thin LUNs (LBPME) report their holes through GET LBA STATUS; on thick ones everything is data.
        if (lun.Capacity.ProvisioningManagementEnabled) features |= BlockDeviceFeatures.AllocationStatus;
        features |= BlockDeviceFeatures.Prefetch; // until the LUN refuses PRE-FETCH

        var blockSize = (int)lun.BlockSize;
        var physical = (int)Math.Min(lun.Capacity.PhysicalBlockLength, 64 * 1024);
        var preferred = Math.Max(Math.Max(blockSize, physical), 4096);
        var maxTransfer = Math.Max(blockSize, maxTransferBytes / blockSize * blockSize);
        var geometry = new BlockGeometry((long)lun.SizeBytes, blockSize, Math.Min(preferred, maxTransfer), maxTransfer);
        return new ScsiLunBlockDevice(lun, geometry, features, buffers, caching);
    }

    private static async Task<bool> IsRotationalAsync(ScsiLun lun, CancellationToken cancellationToken)
    {
        const byte blockDeviceCharacteristics = 0xb1;
        if (!lun.SupportedVpdPages.Contains(blockDeviceCharacteristics)) return false;
        try
        {
            var page = await lun.InquiryVpdAsync(blockDeviceCharacteristics, cancellationToken).ConfigureAwait(false);
            // Medium rotation rate: 0 not reported, 1 non-rotating, anything else rotates.
            return page.Length >= 6 && (page[4] << 8 | page[5]) is > 1 and < 0xffff;
        }
        catch (ScsiCommandException)
        {
            return false;
        }
    }

    /// <summary>Commands issued during a burst leave in one send (<see cref="Iscsi.Sessions.IscsiSession.HoldSends"/>).</summary>
    public void BeginBurst() => _lun.Session.HoldSends();

    public void EndBurst() => _lun.Session.ReleaseSends();

    public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken) =>
        TrackAsync("READ", LunIoKind.Read, destination.Length, _lun.ReadAtAsync(offset, destination, cancellationToken));

    /// <summary>FUA is the WRITE's own bit: the NBD server passes it only when the LUN has DPOFUA
    /// (<see cref="BlockDeviceFeatures.Fua"/>) and otherwise follows the write with a flush itself.</summary>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken) =>
        TrackAsync("WRITE", LunIoKind.Write, source.Length, _lun.WriteAtAsync(offset, source, fua, cancellationToken));

    public ValueTask FlushAsync(CancellationToken cancellationToken) =>
        TrackAsync("SYNCHRONIZE CACHE", LunIoKind.Flush, 0, _lun.SynchronizeCacheAsync(cancellationToken));

    public ValueTask TrimAsync(long offset, long length, CancellationToken cancellationToken)
    {
        var (lba, blocks) = Blocks(offset, length);
        return TrackAsync(_lun.SupportsUnmap ? "UNMAP" : "WRITE SAME", LunIoKind.Trim, length, _lun.SupportsUnmap
            ? _lun.UnmapAsync(lba, blocks, cancellationToken)
            : _lun.WriteSameUnmapAsync(lba, blocks, cancellationToken));
    }

    public ValueTask WriteZeroesAsync(long offset, long length, bool mayUnmap, CancellationToken cancellationToken)
    {
        var (lba, blocks) = Blocks(offset, length);
        return TrackAsync("WRITE SAME", LunIoKind.WriteZeroes, length, mayUnmap && _writeZeroesMayUnmap
            ? _lun.WriteSameUnmapAsync(lba, blocks, cancellationToken)
            : _lun.WriteZeroesAsync(lba, blocks, unmap: false, cancellationToken));
    }

    /// <summary>Descriptors asked for per GET LBA STATUS: a reply of 4 KiB.</summary>
    private const int LbaStatusDescriptors = 255;

    /// <summary>GET LBA STATUS: deallocated and anchored blocks are holes, which read as zeroes when the LUN
    /// says so (LBPRZ). A LUN that refuses the command (ILLEGAL REQUEST) is from then on reported as all
    /// data, which is always a true answer.</summary>
    public async ValueTask<int> GetAllocationAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken)
    {
        if (_lbaStatusRefused || extents.IsEmpty) return AllData(length, extents.Span);
        var (lba, blocks) = Blocks(offset, length);
        var count = Math.Min(extents.Length, LbaStatusDescriptors);
        var answer = ArrayPool<byte>.Shared.Rent(LbaStatus.AllocationLength(count));
        var descriptors = ArrayPool<LbaStatusDescriptor>.Shared.Rent(count);
        var found = 0;
        try
        {
            await TrackAsync("GET LBA STATUS", null, 0, AskAsync()).ConfigureAwait(false);
            return found == 0 ? AllData(length, extents.Span) : ToExtents(descriptors.AsSpan(0, found), blocks, extents.Span);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(answer);
            ArrayPool<LbaStatusDescriptor>.Shared.Return(descriptors);
        }

        async ValueTask AskAsync()
        {
            try
            {
                found = await _lun.GetLbaStatusAsync(lba, answer.AsMemory(0, LbaStatus.AllocationLength(count)),
                    descriptors.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
            }
            catch (ScsiCommandException e) when (IsRefusal(e))
            {
                _lbaStatusRefused = true;
            }
        }
    }

    private int ToExtents(ReadOnlySpan<LbaStatusDescriptor> descriptors, ulong blocks, Span<BlockExtent> extents)
    {
        var hole = BlockAllocation.Hole | (_lun.UnmapReadsZeroes ? BlockAllocation.Zero : 0);
        var count = 0;
        foreach (var d in descriptors)
        {
            if (blocks == 0) break;
            var run = Math.Min(d.Blocks, blocks);
            blocks -= run;
            var state = d.Status == LbaProvisioningStatus.Mapped ? BlockAllocation.Data : hole;
            var bytes = (long)(run * _lun.BlockSize);
            if (count > 0 && extents[count - 1].State == state) extents[count - 1] = extents[count - 1] with { Length = extents[count - 1].Length + bytes };
            else if (count < extents.Length) extents[count++] = new BlockExtent(bytes, state);
            else break;
        }
        return count;
    }

    private static int AllData(long length, Span<BlockExtent> extents)
    {
        extents[0] = new BlockExtent(length, BlockAllocation.Data);
        return 1;
    }

    /// <summary>PRE-FETCH(16); a hint, so failures are only counted. A LUN that refuses the command
    /// (ILLEGAL REQUEST) is not asked again.</summary>
    public async ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken)
    {
        if (_preFetchRefused) return;
        var (lba, blocks) = Blocks(offset, length);
        try
        {
            await TrackAsync("PRE-FETCH", null, 0, AskAsync()).ConfigureAwait(false);
        }
        catch (BlockDeviceException)
        {
            // a hint: the failure is counted, and is never the client's error
        }

        async ValueTask AskAsync()
        {
            try
            {
                await _lun.PreFetchAsync(lba, blocks, cancellationToken).ConfigureAwait(false);
            }
            catch (ScsiCommandException e) when (IsRefusal(e))
            {
                _preFetchRefused = true;
            }
        }
    }

    /// <summary>A LUN that does not do an optional command answers ILLEGAL REQUEST; it is not asked again.</summary>
    private static bool IsRefusal(ScsiCommandException e) => e.Sense?.Key == SenseKey.IllegalRequest;

    /// <summary>The one wrapper every operation goes through: counts it in flight, records its outcome in
    /// <see cref="Statistics"/> (as <paramref name="operation"/> when it is block I/O; allocation status and prefetch
    /// count only in flight and failures), and turns a SCSI failure of <paramref name="command"/> into the errno the
    /// client sees.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask TrackAsync(string command, LunIoKind? operation, long bytes, ValueTask running)
    {
        var started = Statistics.Begin();
        try
        {
            await running.ConfigureAwait(false);
            if (operation is { } kind) Statistics.Completed(kind, bytes, started);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var error = ScsiErrorMapping.ToBlockDeviceException(e, command);
            throw operation is { } kind ? Statistics.Failed(kind, started, error) : Statistics.Failed(error);
        }
        finally
        {
            Statistics.End();
        }
    }

    private (ulong Lba, ulong Blocks) Blocks(long offset, long length) =>
        ((ulong)offset / _lun.BlockSize, (ulong)length / _lun.BlockSize);
}
