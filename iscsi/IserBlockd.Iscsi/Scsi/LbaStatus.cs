using System.Buffers.Binary;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>Provisioning status of an LBA status descriptor (SBC-4 §5.6, table "PROVISIONING STATUS field").</summary>
public enum LbaProvisioningStatus : byte
{
    Mapped = 0,
    Deallocated = 1,
    Anchored = 2,
}

/// <summary>One run of blocks with one provisioning status, as GET LBA STATUS reports it.</summary>
public readonly record struct LbaStatusDescriptor(ulong Lba, uint Blocks, LbaProvisioningStatus Status);

/// <summary>
/// GET LBA STATUS (SERVICE ACTION IN(16) 0x9E, service action 0x12; SBC-4 §5.6): which blocks of a thin
/// LUN are mapped and which are deallocated or anchored, from a starting LBA on.
/// </summary>
/// <remarks>The answer is 8 bytes of header (a 4-byte PARAMETER DATA LENGTH counting the bytes after it,
/// 4 reserved) and 16-byte descriptors: 8-byte LBA, 4-byte block count, provisioning status in the low
/// 4 bits of byte 12.</remarks>
public static class LbaStatus
{
    public const byte ServiceAction = 0x12;
    public const int HeaderSize = 8;
    public const int DescriptorSize = 16;

    /// <summary>The parameter data length needed for <paramref name="descriptors"/> descriptors.</summary>
    public static int AllocationLength(int descriptors) => HeaderSize + DescriptorSize * descriptors;

    public static int WriteCdb(Span<byte> cdb, ulong lba, uint allocationLength)
    {
        cdb[..16].Clear();
        cdb[0] = ScsiOpcode.ServiceActionIn16;
        cdb[1] = ServiceAction;
        BinaryPrimitives.WriteUInt64BigEndian(cdb[2..], lba);
        BinaryPrimitives.WriteUInt32BigEndian(cdb[10..], allocationLength);
        return 16; // byte 14, REPORT TYPE 0: every descriptor
    }

    /// <summary>Reads the descriptors of an answer (as many as both the answer and
    /// <paramref name="descriptors"/> hold); a truncated or short answer yields fewer, never garbage.</summary>
    public static int Parse(ReadOnlySpan<byte> data, Span<LbaStatusDescriptor> descriptors)
    {
        if (data.Length < HeaderSize) return 0;
        var declared = 4L + BinaryPrimitives.ReadUInt32BigEndian(data);
        var available = (int)Math.Min(declared, data.Length);
        var count = Math.Max(0, (available - HeaderSize) / DescriptorSize);
        count = Math.Min(count, descriptors.Length);
        for (var i = 0; i < count; i++)
        {
            var d = data.Slice(HeaderSize + i * DescriptorSize, DescriptorSize);
            descriptors[i] = new LbaStatusDescriptor(BinaryPrimitives.ReadUInt64BigEndian(d),
                BinaryPrimitives.ReadUInt32BigEndian(d[8..]), (LbaProvisioningStatus)(d[12] & 0x0f));
        }
        return count;
    }

    /// <summary>
    /// Asks the LUN about the blocks from <paramref name="lba"/> on and returns its descriptors, checked to
    /// be consecutive from <paramref name="lba"/> (the first one covers it; a descriptor that leaves a gap
    /// or overlaps ends the list). Throws <see cref="ScsiCommandException"/> when the LUN refuses the
    /// command (ILLEGAL REQUEST on targets without it).
    /// </summary>
    /// <param name="buffer">Receives the answer; its length is the allocation length (at most 4 GiB).</param>
    public static async Task<int> GetLbaStatusAsync(this ScsiLun lun, ulong lba, Memory<byte> buffer,
        Memory<LbaStatusDescriptor> descriptors, CancellationToken cancellationToken = default)
    {
        var cdb = new byte[16];
        WriteCdb(cdb, lba, (uint)buffer.Length);
        buffer.Span.Clear();
        await lun.ExecuteWithRetryAsync(cdb, ScsiDataDirection.Read, buffer, cancellationToken).ConfigureAwait(false);
        return Consecutive(lba, descriptors.Span[..Parse(buffer.Span, descriptors.Span)]);
    }

    /// <summary>Clips the first descriptor to start at <paramref name="lba"/> and drops everything from the
    /// first one that does not continue where the previous ended.</summary>
    internal static int Consecutive(ulong lba, Span<LbaStatusDescriptor> descriptors)
    {
        var next = lba;
        for (var i = 0; i < descriptors.Length; i++)
        {
            var d = descriptors[i];
            var end = d.Lba + d.Blocks;
            if (d.Blocks == 0 || d.Lba > next || end <= next || end < d.Lba) return i;
            descriptors[i] = d with { Lba = next, Blocks = (uint)(end - next) };
            next = end;
        }
        return descriptors.Length;
    }
}
