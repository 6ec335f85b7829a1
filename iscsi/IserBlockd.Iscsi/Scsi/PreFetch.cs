using System.Buffers.Binary;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>
/// PRE-FETCH(16) (opcode 0x90; SBC-4 §5.9): asks the LUN to read blocks into its cache. Split by the Block
/// Limits page's MAXIMUM PREFETCH LENGTH; sent with IMMED, so the target answers once it has the request.
/// GOOD and CONDITION MET both mean it was taken.
/// </summary>
public static class PreFetch
{
    public static int WriteCdb(Span<byte> cdb, ulong lba, uint blocks)
    {
        cdb[..16].Clear();
        cdb[0] = ScsiOpcode.PreFetch16;
        cdb[1] = 0x02; // IMMED
        BinaryPrimitives.WriteUInt64BigEndian(cdb[2..], lba);
        BinaryPrimitives.WriteUInt32BigEndian(cdb[10..], blocks);
        return 16;
    }

    /// <summary>Throws <see cref="ScsiCommandException"/> when the LUN refuses (ILLEGAL REQUEST on targets
    /// without PRE-FETCH).</summary>
    public static async Task PreFetchAsync(this ScsiLun lun, ulong lba, ulong blocks, CancellationToken cancellationToken = default)
    {
        if (lba > lun.BlockCount || blocks > lun.BlockCount - lba) throw new ArgumentOutOfRangeException(nameof(blocks));
        var maxBlocks = lun.BlockLimits?.MaximumPrefetchLength is > 0 and var m ? m : uint.MaxValue;
        var cdb = new byte[16];
        while (blocks > 0)
        {
            var chunk = (uint)Math.Min(blocks, maxBlocks);
            WriteCdb(cdb, lba, chunk);
            await lun.ExecuteWithRetryAsync(cdb, ScsiDataDirection.None, Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
            lba += chunk;
            blocks -= chunk;
        }
    }
}
