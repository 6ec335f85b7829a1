using IserBlockd.BlockDev.Buffers;
using Microsoft.Win32.SafeHandles;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Devices;

/// <summary>
/// A block device backed by a regular file: positional reads and writes (RandomAccess on a
/// SafeFileHandle), fsync for FLUSH and FUA, hole punching for TRIM and write-zeroes where the file
/// system supports it. Holes in a sparse file read as zeroes.
/// </summary>
public sealed class FileBlockDevice : IBlockDevice, IDisposable
{
    private readonly SafeFileHandle _file;

    private FileBlockDevice(SafeFileHandle file, BlockGeometry geometry, BlockDeviceFeatures features, IBlockBufferProvider buffers)
    {
        _file = file;
        Geometry = geometry;
        Features = features;
        Buffers = buffers;
    }

    /// <summary>Opens (with <see cref="FileBlockDeviceOptions.Size"/>: creates or extends) the file.</summary>
    public static FileBlockDevice Open(string path, FileBlockDeviceOptions? options = null)
    {
        options ??= new FileBlockDeviceOptions();
        var mode = options.Size.HasValue ? FileMode.OpenOrCreate : FileMode.Open;
        var access = options.ReadOnly ? FileAccess.Read : FileAccess.ReadWrite;
        var file = File.OpenHandle(path, mode, access, FileShare.ReadWrite, FileOptions.Asynchronous);
        try
        {
            if (options.Size is { } size && RandomAccess.GetLength(file) < size)
                RandomAccess.SetLength(file, size);
            var length = RandomAccess.GetLength(file);
            var usable = length - length % options.LogicalBlockSize;
            if (usable <= 0)
                throw new ArgumentException($"'{path}' is smaller than one {options.LogicalBlockSize}-byte block.", nameof(path));
            var features = BlockDeviceFeatures.Flush | BlockDeviceFeatures.Trim | BlockDeviceFeatures.WriteZeroes |
                           BlockDeviceFeatures.MultiConnection;
            if (options.ReadOnly) features |= BlockDeviceFeatures.ReadOnly;
            var buffers = options.Buffers ?? new PinnedBlockBufferPool(new PinnedBlockBufferPoolOptions
            {
                MaxBufferSize = Math.Max(PinnedBlockBufferPool.Alignment, options.MaxTransferBytes),
                MaxRentedBytes = Math.Max(512L << 20, 4L * options.MaxTransferBytes),
            });
            return new FileBlockDevice(file,
                new BlockGeometry(usable, options.LogicalBlockSize, options.PreferredBlockSize, options.MaxTransferBytes),
                features, buffers);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public BlockGeometry Geometry { get; }
    public BlockDeviceFeatures Features { get; }
    public IBlockBufferProvider Buffers { get; }

    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        while (!destination.IsEmpty)
        {
            var read = await RandomAccess.ReadAsync(_file, destination, offset, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                // The file shrank under us: what is missing reads as zeroes, as a hole would.
                destination.Span.Clear();
                return;
            }
            destination = destination[read..];
            offset += read;
        }
    }

    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken)
    {
        try
        {
            await RandomAccess.WriteAsync(_file, source, offset, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e) when (e.HResult is Errno.ENOSPC or Errno.EFBIG or Errno.EDQUOT) // what NBD reports as ENOSPC (doc/proto.md, "Error values")
        {
            throw new BlockDeviceException(BlockError.NoSpace, e.Message, e);
        }
        if (fua) await FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken) =>
        new(Task.Run(() => RandomAccess.FlushToDisk(_file), cancellationToken));

    public ValueTask TrimAsync(long offset, long length, CancellationToken cancellationToken) =>
        new(Task.Run(() => { FileSpace.TryPunchHole(_file, offset, length); }, cancellationToken)); // a trim is only a hint

    public ValueTask WriteZeroesAsync(long offset, long length, bool mayUnmap, CancellationToken cancellationToken) =>
        new(Task.Run(async () =>
        {
            var done = mayUnmap ? FileSpace.TryPunchHole(_file, offset, length) : FileSpace.TryZeroRange(_file, offset, length);
            if (!done) await WriteZeroBuffersAsync(offset, length, cancellationToken).ConfigureAwait(false);
        }, cancellationToken));

    public ValueTask<int> GetAllocationAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken) =>
        throw new NotSupportedException("FileBlockDevice does not report allocation.");

    /// <summary>The page cache reads ahead by itself.</summary>
    public ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private async Task WriteZeroBuffersAsync(long offset, long length, CancellationToken cancellationToken)
    {
        var zeroes = new byte[(int)Math.Min(length, 1 << 20)];
        while (length > 0)
        {
            var count = (int)Math.Min(length, zeroes.Length);
            await RandomAccess.WriteAsync(_file, zeroes.AsMemory(0, count), offset, cancellationToken).ConfigureAwait(false);
            offset += count;
            length -= count;
        }
    }

    public void Dispose() => _file.Dispose();
}
