using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Primitives.Splicing;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>
/// A logical unit of a session, probed at open (INQUIRY, READ CAPACITY, Block Limits and Logical Block
/// Provisioning VPD pages), with block I/O that issues READ/WRITE(16) (falling back to (10) where the LU lacks
/// them), SYNCHRONIZE CACHE, UNMAP and WRITE SAME(16) with UNMAP. UNIT ATTENTION is retried, as every SCSI
/// midlayer does (tgtd answers the first command of a session with 29/00); other failures throw
/// <see cref="ScsiCommandException"/>. Block I/O (read, write, synchronize cache, unmap, write same) completes without
/// allocating.
/// </summary>
/// <remarks>
/// The block I/O calls complete on the session's receive loop when they succeed: the code that awaits them runs there
/// until its next await. It must not block (no synchronous waits, no blocking I/O, in particular never a synchronous
/// wait for another command, which only that loop can complete); count, hand the result on, issue the next command.
/// Failures, and the probing and <see cref="ExecuteWithRetryAsync(ReadOnlyMemory{byte}, ScsiDataDirection, Memory{byte}, CancellationToken)"/>
/// calls, complete on the thread pool.
/// </remarks>
public sealed partial class ScsiLun
{
    private const uint DefaultMaxTransferBytes = 32 * 1024 * 1024;

    private readonly ILogger _logger;
    private bool _use16;
    private byte[]? _zeroBlock;

    private ScsiLun(IscsiSession session, ulong lun, ILogger logger)
    {
        Session = session;
        Lun = lun;
        _logger = logger;
    }

    public IscsiSession Session { get; }
    public ulong Lun { get; }
    public InquiryData Inquiry { get; private set; } = new();
    public ReadCapacityData Capacity { get; private set; } = new();
    public IReadOnlyList<byte> SupportedVpdPages { get; private set; } = [];
    public BlockLimits? BlockLimits { get; private set; }
    public LogicalBlockProvisioning? Provisioning { get; private set; }
    public string? SerialNumber { get; private set; }
    public IReadOnlyList<Designator> Designators { get; private set; } = [];

    public uint BlockSize => Capacity.LogicalBlockLength;
    public ulong BlockCount => Capacity.BlockCount;
    public ulong SizeBytes => Capacity.CapacityBytes;

    /// <summary>UNMAP works: thin provisioning enabled (LBPME) and LBPU set.</summary>
    public bool SupportsUnmap => Capacity.ProvisioningManagementEnabled && Provisioning?.Unmap == true;

    /// <summary>WRITE SAME(16) with UNMAP works: LBPME and LBPWS set.</summary>
    public bool SupportsWriteSameUnmap => Capacity.ProvisioningManagementEnabled && Provisioning?.WriteSame16Unmap == true;

    /// <summary>Unmapped blocks read back as zeros (LBPRZ).</summary>
    public bool UnmapReadsZeroes => Capacity.ReadsZeroesAfterUnmap || Provisioning?.ReadsZeroesAfterUnmap == true;

    /// <summary>Largest single READ/WRITE in bytes; larger requests are split.</summary>
    public int MaxTransferBytes
    {
        get
        {
            var blocks = BlockLimits?.MaximumTransferLength ?? 0;
            var bytes = blocks > 0 ? Math.Min((ulong)blocks * BlockSize, DefaultMaxTransferBytes) : DefaultMaxTransferBytes;
            if (!_use16) bytes = Math.Min(bytes, 65535UL * BlockSize);
            var transport = Session.Parameters.MaxCommandDataLength;
            if (transport > 0) bytes = Math.Min(bytes, (ulong)transport);
            return (int)(bytes / BlockSize * BlockSize);
        }
    }

    internal static async Task<ScsiLun> OpenAsync(IscsiSession session, ulong lun, ILogger logger, CancellationToken cancellationToken)
    {
        var unit = new ScsiLun(session, lun, logger);
        await unit.TestUnitReadyAsync(cancellationToken).ConfigureAwait(false);
        unit.Inquiry = await unit.InquiryAsync(cancellationToken).ConfigureAwait(false);
        if (!unit.Inquiry.IsConnected)
            throw new IscsiException($"LUN {lun} of {session.Options.TargetName} is not connected (peripheral qualifier {unit.Inquiry.PeripheralQualifier})");
        await unit.ReadCapacityAsync(cancellationToken).ConfigureAwait(false);
        unit.ChooseCommandSize();
        unit.WatchAttentions();
        try
        {
            unit.SupportedVpdPages = VpdPage.ParseSupportedPages(await unit.InquiryVpdAsync(VpdPage.SupportedPages, cancellationToken).ConfigureAwait(false));
        }
        catch (ScsiCommandException e)
        {
            ScsiLog.NoVpdPagesList(logger, lun, e.Message);
        }
        if (unit.SupportedVpdPages.Contains(VpdPage.UnitSerialNumber))
            unit.SerialNumber = VpdPage.ParseUnitSerialNumber(await unit.InquiryVpdAsync(VpdPage.UnitSerialNumber, cancellationToken).ConfigureAwait(false));
        if (unit.SupportedVpdPages.Contains(VpdPage.DeviceIdentification))
            unit.Designators = Designator.ParsePage(await unit.InquiryVpdAsync(VpdPage.DeviceIdentification, cancellationToken).ConfigureAwait(false));
        if (unit.SupportedVpdPages.Contains(VpdPage.BlockLimits))
            unit.BlockLimits = BlockLimits.Parse(await unit.InquiryVpdAsync(VpdPage.BlockLimits, cancellationToken).ConfigureAwait(false));
        if (unit.SupportedVpdPages.Contains(VpdPage.LogicalBlockProvisioning))
            unit.Provisioning = LogicalBlockProvisioning.Parse(await unit.InquiryVpdAsync(VpdPage.LogicalBlockProvisioning, cancellationToken).ConfigureAwait(false));
        ScsiLog.Opened(logger, lun, unit.Inquiry.Vendor, unit.Inquiry.Product, unit.Inquiry.Revision, unit.BlockCount, unit.BlockSize, unit.SupportsUnmap || unit.SupportsWriteSameUnmap ? ", thin provisioned" : "");
        return unit;
    }

    // ---------------------------------------------------------------- block I/O

    /// <summary>
    /// Reads whole blocks starting at <paramref name="lba"/> into <paramref name="buffer"/> (a multiple of the block size).
    /// Up to <see cref="MaxTransferBytes"/> this is one command that completes through its pooled task: no allocation.
    /// </summary>
    public ValueTask ReadAsync(ulong lba, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(lba, buffer.Length);
        if (buffer.Length == 0) return ValueTask.CompletedTask;
        return buffer.Length <= MaxTransferBytes
            ? Transfer(write: false, lba, buffer, fua: false, cancellationToken)
            : TransferInChunksAsync(write: false, lba, buffer, fua: false, cancellationToken);
    }

    /// <summary>Writes whole blocks; with <paramref name="fua"/> the target completes only once the data is durable.</summary>
    public ValueTask WriteAsync(ulong lba, ReadOnlyMemory<byte> buffer, bool fua = false, CancellationToken cancellationToken = default)
    {
        CheckRange(lba, buffer.Length);
        if (buffer.Length == 0) return ValueTask.CompletedTask;
        // Used in place: the transport (and an iSER registration) sees the caller's memory.
        var memory = MemoryMarshal.AsMemory(buffer);
        return memory.Length <= MaxTransferBytes
            ? Transfer(write: true, lba, memory, fua, cancellationToken)
            : TransferInChunksAsync(write: true, lba, memory, fua, cancellationToken);
    }

    /// <summary>Reads at a byte offset (aligned to the block size).</summary>
    public ValueTask ReadAtAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
        => ReadAsync(ToLba(offset), buffer, cancellationToken);

    /// <summary>Writes at a byte offset (aligned to the block size).</summary>
    public ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> buffer, bool fua = false, CancellationToken cancellationToken = default)
        => WriteAsync(ToLba(offset), buffer, fua, cancellationToken);

    private ulong ToLba(long offset)
    {
        if (offset < 0 || offset % BlockSize != 0)
            throw new ArgumentException($"offset {offset} is not a multiple of the {BlockSize}-byte block size", nameof(offset));
        return (ulong)offset / BlockSize;
    }

    /// <summary>How many pieces of one split request are in flight at once.</summary>
    private const int MaxPiecesInFlight = 16;

    /// <summary>
    /// A request larger than one command may carry (iSER moves at most 512 KiB per command) goes out as several
    /// commands at once, as the kernel does, each on its slice of the same buffer. It fails when any piece fails, but
    /// only once every piece has ended: until then the target may still be moving data in or out of the buffer.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask TransferInChunksAsync(bool write, ulong lba, Memory<byte> buffer, bool fua, CancellationToken cancellationToken)
    {
        // The pieces may be received at once (on several connections, or old and new ones during recovery): into
        // the buffer, not a payload pipe, which takes one receive at a time.
        if (!write) PayloadPipe.Detach(buffer);
        var max = MaxTransferBytes;
        var blocksPerPiece = (ulong)(max / (int)BlockSize);
        var count = (buffer.Length + max - 1) / max;
        var window = Math.Min(count, MaxPiecesInFlight);
        var inFlight = ArrayPool<ValueTask>.Shared.Rent(window);
        Exception? failure = null;
        int started = 0, finished = 0;
        try
        {
            while (finished < count)
            {
                while (started < count && started - finished < window)
                {
                    var offset = started * max;
                    try
                    {
                        inFlight[started % window] = Transfer(write, lba + (ulong)started * blocksPerPiece,
                            buffer.Slice(offset, Math.Min(max, buffer.Length - offset)), fua, cancellationToken);
                    }
                    catch (Exception e)
                    {
                        failure ??= e;
                    }
                    started++;
                    if (failure != null) count = started; // start no more pieces; wait for those on the wire
                }
                try
                {
                    await inFlight[finished % window].ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    failure ??= e;
                    count = started;
                }
                inFlight[finished % window] = default;
                finished++;
            }
        }
        finally
        {
            ArrayPool<ValueTask>.Shared.Return(inFlight, clearArray: true);
        }
        if (failure != null) ExceptionDispatchInfo.Throw(failure);
    }

    private ValueTask Transfer(bool write, ulong lba, Memory<byte> buffer, bool fua, CancellationToken cancellationToken)
    {
        var blocks = (uint)(buffer.Length / (int)BlockSize);
        Span<byte> cdb = stackalloc byte[16];
        int length;
        if (_use16 || lba + blocks > uint.MaxValue || blocks > ushort.MaxValue)
            length = write ? CdbBuilder.Write16(cdb, lba, blocks, fua) : CdbBuilder.Read16(cdb, lba, blocks, fua);
        else
            length = write ? CdbBuilder.Write10(cdb, (uint)lba, (ushort)blocks, fua) : CdbBuilder.Read10(cdb, (uint)lba, (ushort)blocks, fua);
        return Session.ExecuteBlockIoAsync(Lun, cdb[..length], write ? ScsiDataDirection.Write : ScsiDataDirection.Read, buffer, cancellationToken);
    }

    private int CheckRange(ulong lba, int length)
    {
        ThrowIfOffline();
        if (BlockSize == 0) throw new InvalidOperationException("the LUN's block size is unknown");
        if (length % BlockSize != 0)
            throw new ArgumentException($"{length} bytes is not a multiple of the {BlockSize}-byte block size", nameof(length));
        var blocks = (ulong)length / BlockSize;
        if (lba > BlockCount || blocks > BlockCount - lba)
            throw new ArgumentOutOfRangeException(nameof(lba), $"blocks {lba}..{lba + blocks} lie beyond the end of the LUN ({BlockCount} blocks)");
        return (int)blocks;
    }

    /// <summary>SYNCHRONIZE CACHE of the whole LU: every write completed before is durable when this completes.</summary>
    public ValueTask SynchronizeCacheAsync(CancellationToken cancellationToken = default)
    {
        Span<byte> cdb = stackalloc byte[16];
        var length = _use16 ? CdbBuilder.SynchronizeCache16(cdb) : CdbBuilder.SynchronizeCache10(cdb);
        return Session.ExecuteBlockIoAsync(Lun, cdb[..length], ScsiDataDirection.None, Memory<byte>.Empty, cancellationToken);
    }

    /// <summary>UNMAP (deallocate) <paramref name="blocks"/> blocks at <paramref name="lba"/>, split by the Block Limits page.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask UnmapAsync(ulong lba, ulong blocks, CancellationToken cancellationToken = default)
    {
        if (!SupportsUnmap) throw new NotSupportedException($"LUN {Lun} does not support UNMAP (not thin provisioned or LBPU clear)");
        CheckRange(lba, 0);
        if (blocks > BlockCount - lba) throw new ArgumentOutOfRangeException(nameof(blocks));
        var maxBlocks = BlockLimits?.MaximumUnmapLbaCount is > 0 and var m ? m : uint.MaxValue;
        // The parameter list is the command's data-out buffer: it must live until the command ends, so not on the stack.
        var list = ArrayPool<byte>.Shared.Rent(UnmapParameterList.Size(1));
        try
        {
            while (blocks > 0)
            {
                var chunk = (uint)Math.Min(blocks, maxBlocks);
                await Unmap(list, lba, chunk, cancellationToken).ConfigureAwait(false);
                lba += chunk;
                blocks -= chunk;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(list);
        }
    }

    private ValueTask Unmap(byte[] list, ulong lba, uint blocks, CancellationToken cancellationToken)
    {
        var size = UnmapParameterList.Write(list, [(lba, blocks)]);
        Span<byte> cdb = stackalloc byte[10];
        var length = CdbBuilder.Unmap(cdb, (ushort)size);
        return Session.ExecuteBlockIoAsync(Lun, cdb[..length], ScsiDataDirection.Write, list.AsMemory(0, size), cancellationToken);
    }

    /// <summary>WRITE SAME(16) with UNMAP: zeroes the range and lets a thin target deallocate it.</summary>
    public ValueTask WriteSameUnmapAsync(ulong lba, ulong blocks, CancellationToken cancellationToken = default)
    {
        if (!SupportsWriteSameUnmap) throw new NotSupportedException($"LUN {Lun} does not support WRITE SAME(16) with UNMAP");
        return WriteZeroesAsync(lba, blocks, unmap: true, cancellationToken);
    }

    /// <summary>
    /// WRITE SAME(16) of a zero block over the range, split by the Block Limits page: with <paramref name="unmap"/> a
    /// thin target may deallocate the blocks (they read back as zeros either way), without it they stay allocated.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteZeroesAsync(ulong lba, ulong blocks, bool unmap, CancellationToken cancellationToken = default)
    {
        if (lba > BlockCount || blocks > BlockCount - lba) throw new ArgumentOutOfRangeException(nameof(blocks));
        var zero = _zeroBlock ??= new byte[BlockSize];
        var maxBlocks = BlockLimits?.MaximumWriteSameLength is > 0 and var m ? Math.Min(m, uint.MaxValue) : 65536UL;
        while (blocks > 0)
        {
            var chunk = (uint)Math.Min(blocks, maxBlocks);
            await WriteSame(zero, lba, chunk, unmap, cancellationToken).ConfigureAwait(false);
            lba += chunk;
            blocks -= chunk;
        }
    }

    private ValueTask WriteSame(byte[] block, ulong lba, uint blocks, bool unmap, CancellationToken cancellationToken)
    {
        Span<byte> cdb = stackalloc byte[16];
        var length = CdbBuilder.WriteSame16(cdb, lba, blocks, unmap);
        return Session.ExecuteBlockIoAsync(Lun, cdb[..length], ScsiDataDirection.Write, block, cancellationToken);
    }

    // ---------------------------------------------------------------- probing

    public async Task TestUnitReadyAsync(CancellationToken cancellationToken = default)
    {
        var cdb = new byte[6];
        CdbBuilder.TestUnitReady(cdb);
        await ExecuteWithRetryAsync(cdb, ScsiDataDirection.None, Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
    }

    public async Task<InquiryData> InquiryAsync(CancellationToken cancellationToken = default)
    {
        var buffer = new byte[96];
        var cdb = new byte[6];
        CdbBuilder.Inquiry(cdb, (ushort)buffer.Length);
        var result = await ExecuteWithRetryAsync(cdb, ScsiDataDirection.Read, buffer, cancellationToken).ConfigureAwait(false);
        return InquiryData.Parse(buffer.AsSpan(0, result.BytesTransferred));
    }

    /// <summary>The raw bytes of a VPD page (header included).</summary>
    public async Task<byte[]> InquiryVpdAsync(byte page, CancellationToken cancellationToken = default)
    {
        var buffer = new byte[1024];
        var cdb = new byte[6];
        CdbBuilder.Inquiry(cdb, (ushort)buffer.Length, page);
        var result = await ExecuteWithRetryAsync(cdb, ScsiDataDirection.Read, buffer, cancellationToken).ConfigureAwait(false);
        return buffer.AsSpan(0, result.BytesTransferred).ToArray();
    }

    /// <summary>READ CAPACITY(16), or (10) where (16) is not supported; refreshes <see cref="Capacity"/>.</summary>
    public async Task<ReadCapacityData> ReadCapacityAsync(CancellationToken cancellationToken = default)
    {
        var buffer = new byte[32];
        var cdb = new byte[16];
        CdbBuilder.ReadCapacity16(cdb, (uint)buffer.Length);
        try
        {
            var result = await ExecuteWithRetryAsync(cdb, ScsiDataDirection.Read, buffer, cancellationToken).ConfigureAwait(false);
            Capacity = ReadCapacityData.Parse16(buffer.AsSpan(0, result.BytesTransferred));
            _use16 = true;
        }
        catch (ScsiCommandException e) when (e.Sense?.Key == SenseKey.IllegalRequest)
        {
            ScsiLog.ReadCapacity16Rejected(_logger, Lun, e.Sense);
            var cdb10 = new byte[10];
            CdbBuilder.ReadCapacity10(cdb10);
            var result = await ExecuteWithRetryAsync(cdb10, ScsiDataDirection.Read, buffer.AsMemory(0, 8), cancellationToken).ConfigureAwait(false);
            var capacity = ReadCapacityData.Parse10(buffer.AsSpan(0, result.BytesTransferred));
            if (capacity.LastLogicalBlockAddress == uint.MaxValue)
                throw new IscsiException($"LUN {Lun} is larger than READ CAPACITY(10) can describe but rejects READ CAPACITY(16)");
            Capacity = capacity;
            _use16 = false;
        }
        if (Capacity.LogicalBlockLength is 0 or > 65536 || (Capacity.LogicalBlockLength & (Capacity.LogicalBlockLength - 1)) != 0)
            throw new IscsiException($"LUN {Lun} reports a logical block length of {Capacity.LogicalBlockLength}");
        return Capacity;
    }

    /// <summary>
    /// The 10-byte READ/WRITE/SYNCHRONIZE CACHE while the LBA fits 32 bits, as the Linux sd driver chooses
    /// (<see cref="Transfer"/> still takes the 16-byte form for a request that needs it). No probe: a
    /// zero-length READ(16) without the R bit is dropped by istgt and never answered.
    /// </summary>
    private void ChooseCommandSize() => _use16 = BlockCount > uint.MaxValue;

    /// <summary>Any CDB on this LUN, with the session's retry policy; throws <see cref="ScsiCommandException"/> unless GOOD.</summary>
    public async Task<ScsiCommandResult> ExecuteWithRetryAsync(ReadOnlyMemory<byte> cdb, ScsiDataDirection direction, Memory<byte> buffer, CancellationToken cancellationToken = default)
        => await Session.ExecuteWithRetryAsync(Lun, cdb.Span, direction, buffer, cancellationToken).ConfigureAwait(false);
}
