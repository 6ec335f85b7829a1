using System.Runtime.CompilerServices;
using IserBlockd.BlockDev;
using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Daemon.Luns;

/// <summary>
/// The LUN adapter (DESIGN, data path step 3): an iSCSI LUN as the <see cref="IBlockDevice"/> the NBD side
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

    private ScsiLunBlockDevice(ScsiLun lun, BlockGeometry geometry, BlockDeviceFeatures features, IBlockBufferProvider buffers, CachingModePage caching)
    {
        _lun = lun;
        Geometry = geometry;
        Features = features;
        Buffers = buffers;
        Caching = caching;
        _writeZeroesMayUnmap = lun.SupportsWriteSameUnmap && lun.UnmapReadsZeroes;
    }

    public BlockGeometry Geometry { get; }
    public BlockDeviceFeatures Features { get; }
    public IBlockBufferProvider Buffers { get; }
    public LunStatistics Statistics { get; } = new();
    public CachingModePage Caching { get; }
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
        if (caching.WriteCacheEnabled)
        {
            features |= BlockDeviceFeatures.Flush;
            if (caching.SupportsFua) features |= BlockDeviceFeatures.Fua;
        }
        if (lun.SupportsUnmap || lun.SupportsWriteSameUnmap) features |= BlockDeviceFeatures.Trim;
        if (lun.SupportsWriteSameUnmap) features |= BlockDeviceFeatures.WriteZeroes;
        if (rotational) features |= BlockDeviceFeatures.Rotational;

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

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        Statistics.Begin();
        try
        {
            await _lun.ReadAtAsync(offset, destination, cancellationToken).ConfigureAwait(false);
            Statistics.Read(destination.Length);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Statistics.Failed();
            throw ScsiErrorMapping.ToBlockDeviceException(e, "READ");
        }
        finally
        {
            Statistics.End();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken)
    {
        Statistics.Begin();
        try
        {
            if (fua && !Features.HasFlag(BlockDeviceFeatures.Fua) && Features.HasFlag(BlockDeviceFeatures.Flush))
            {
                // The LUN ignores FUA (no DPOFUA): write, then make it durable with a cache flush.
                await _lun.WriteAtAsync(offset, source, false, cancellationToken).ConfigureAwait(false);
                await _lun.SynchronizeCacheAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await _lun.WriteAtAsync(offset, source, fua, cancellationToken).ConfigureAwait(false);
            }
            Statistics.Written(source.Length);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Statistics.Failed();
            throw ScsiErrorMapping.ToBlockDeviceException(e, "WRITE");
        }
        finally
        {
            Statistics.End();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        Statistics.Begin();
        try
        {
            await _lun.SynchronizeCacheAsync(cancellationToken).ConfigureAwait(false);
            Statistics.Flushed();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Statistics.Failed();
            throw ScsiErrorMapping.ToBlockDeviceException(e, "SYNCHRONIZE CACHE");
        }
        finally
        {
            Statistics.End();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask TrimAsync(long offset, long length, CancellationToken cancellationToken)
    {
        Statistics.Begin();
        try
        {
            var (lba, blocks) = Blocks(offset, length);
            if (_lun.SupportsUnmap) await _lun.UnmapAsync(lba, blocks, cancellationToken).ConfigureAwait(false);
            else await _lun.WriteSameUnmapAsync(lba, blocks, cancellationToken).ConfigureAwait(false);
            Statistics.Trimmed();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Statistics.Failed();
            throw ScsiErrorMapping.ToBlockDeviceException(e, "UNMAP");
        }
        finally
        {
            Statistics.End();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteZeroesAsync(long offset, long length, bool mayUnmap, bool fua, CancellationToken cancellationToken)
    {
        Statistics.Begin();
        try
        {
            var (lba, blocks) = Blocks(offset, length);
            if (mayUnmap && _writeZeroesMayUnmap) await _lun.WriteSameUnmapAsync(lba, blocks, cancellationToken).ConfigureAwait(false);
            else await _lun.WriteZeroesAsync(lba, blocks, unmap: false, cancellationToken).ConfigureAwait(false);
            if (fua && Features.HasFlag(BlockDeviceFeatures.Flush))
                await _lun.SynchronizeCacheAsync(cancellationToken).ConfigureAwait(false);
            Statistics.Written(length);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Statistics.Failed();
            throw ScsiErrorMapping.ToBlockDeviceException(e, "WRITE SAME");
        }
        finally
        {
            Statistics.End();
        }
    }

    private (ulong Lba, ulong Blocks) Blocks(long offset, long length) =>
        ((ulong)offset / _lun.BlockSize, (ulong)length / _lun.BlockSize);
}
