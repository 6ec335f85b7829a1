using System.Buffers.Binary;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>
/// Writes the CDBs this initiator issues into a caller's span and returns the CDB length. Big-endian fields,
/// control byte 0.
/// </summary>
public static class CdbBuilder
{
    public static int TestUnitReady(Span<byte> cdb)
    {
        cdb[..6].Clear();
        return 6;
    }

    /// <summary>INQUIRY; with <paramref name="vpdPage"/> set, the EVPD bit and page code.</summary>
    public static int Inquiry(Span<byte> cdb, ushort allocationLength, byte? vpdPage = null)
    {
        cdb[..6].Clear();
        cdb[0] = ScsiOpcode.Inquiry;
        if (vpdPage is byte page)
        {
            cdb[1] = 1;
            cdb[2] = page;
        }
        BinaryPrimitives.WriteUInt16BigEndian(cdb[3..], allocationLength);
        return 6;
    }

    public static int ReadCapacity10(Span<byte> cdb)
    {
        cdb[..10].Clear();
        cdb[0] = ScsiOpcode.ReadCapacity10;
        return 10;
    }

    public static int ReadCapacity16(Span<byte> cdb, uint allocationLength = 32)
    {
        cdb[..16].Clear();
        cdb[0] = ScsiOpcode.ServiceActionIn16;
        cdb[1] = ScsiOpcode.ReadCapacity16ServiceAction;
        BinaryPrimitives.WriteUInt32BigEndian(cdb[10..], allocationLength);
        return 16;
    }

    public static int Read16(Span<byte> cdb, ulong lba, uint blocks, bool fua = false)
        => ReadWrite16(cdb, ScsiOpcode.Read16, lba, blocks, fua);

    public static int Write16(Span<byte> cdb, ulong lba, uint blocks, bool fua = false)
        => ReadWrite16(cdb, ScsiOpcode.Write16, lba, blocks, fua);

    public static int Read10(Span<byte> cdb, uint lba, ushort blocks, bool fua = false)
        => ReadWrite10(cdb, ScsiOpcode.Read10, lba, blocks, fua);

    public static int Write10(Span<byte> cdb, uint lba, ushort blocks, bool fua = false)
        => ReadWrite10(cdb, ScsiOpcode.Write10, lba, blocks, fua);

    /// <summary>SYNCHRONIZE CACHE(10) of the whole LU (LBA 0, 0 blocks), IMMED clear: status after the flush.</summary>
    public static int SynchronizeCache10(Span<byte> cdb)
    {
        cdb[..10].Clear();
        cdb[0] = ScsiOpcode.SynchronizeCache10;
        return 10;
    }

    /// <summary>SYNCHRONIZE CACHE(16) of the whole LU, IMMED clear.</summary>
    public static int SynchronizeCache16(Span<byte> cdb)
    {
        cdb[..16].Clear();
        cdb[0] = ScsiOpcode.SynchronizeCache16;
        return 16;
    }

    /// <summary>UNMAP with a parameter list of <paramref name="parameterListLength"/> bytes (see <see cref="UnmapParameterList"/>).</summary>
    public static int Unmap(Span<byte> cdb, ushort parameterListLength)
    {
        cdb[..10].Clear();
        cdb[0] = ScsiOpcode.Unmap;
        BinaryPrimitives.WriteUInt16BigEndian(cdb[7..], parameterListLength);
        return 10;
    }

    /// <summary>WRITE SAME(16); with <paramref name="unmap"/> the target may deallocate instead of writing (thin provisioning).</summary>
    public static int WriteSame16(Span<byte> cdb, ulong lba, uint blocks, bool unmap)
    {
        cdb[..16].Clear();
        cdb[0] = ScsiOpcode.WriteSame16;
        if (unmap) cdb[1] = 0x08;
        BinaryPrimitives.WriteUInt64BigEndian(cdb[2..], lba);
        BinaryPrimitives.WriteUInt32BigEndian(cdb[10..], blocks);
        return 16;
    }

    public static int ReportLuns(Span<byte> cdb, uint allocationLength, byte selectReport = 0)
    {
        cdb[..12].Clear();
        cdb[0] = ScsiOpcode.ReportLuns;
        cdb[2] = selectReport;
        BinaryPrimitives.WriteUInt32BigEndian(cdb[6..], allocationLength);
        return 12;
    }

    /// <summary>The starting LBA of a READ/WRITE/WRITE SAME CDB (for log lines); null for other commands.</summary>
    public static ulong? TryGetLba(ReadOnlySpan<byte> cdb)
    {
        if (cdb.IsEmpty) return null;
        return cdb[0] switch
        {
            ScsiOpcode.Read10 or ScsiOpcode.Write10 when cdb.Length >= 10 => BinaryPrimitives.ReadUInt32BigEndian(cdb[2..]),
            ScsiOpcode.Read16 or ScsiOpcode.Write16 or ScsiOpcode.WriteSame16 when cdb.Length >= 16 => BinaryPrimitives.ReadUInt64BigEndian(cdb[2..]),
            _ => null,
        };
    }

    private static int ReadWrite16(Span<byte> cdb, byte opcode, ulong lba, uint blocks, bool fua)
    {
        cdb[..16].Clear();
        cdb[0] = opcode;
        if (fua) cdb[1] = 0x08;
        BinaryPrimitives.WriteUInt64BigEndian(cdb[2..], lba);
        BinaryPrimitives.WriteUInt32BigEndian(cdb[10..], blocks);
        return 16;
    }

    private static int ReadWrite10(Span<byte> cdb, byte opcode, uint lba, ushort blocks, bool fua)
    {
        cdb[..10].Clear();
        cdb[0] = opcode;
        if (fua) cdb[1] = 0x08;
        BinaryPrimitives.WriteUInt32BigEndian(cdb[2..], lba);
        BinaryPrimitives.WriteUInt16BigEndian(cdb[7..], blocks);
        return 10;
    }
}

/// <summary>The UNMAP parameter list (SBC-3 §5.28.2): 8-byte header, then 16-byte block descriptors.</summary>
public static class UnmapParameterList
{
    public const int HeaderLength = 8;
    public const int DescriptorLength = 16;

    public static int Size(int descriptors) => HeaderLength + descriptors * DescriptorLength;

    public static int Write(Span<byte> destination, ReadOnlySpan<(ulong Lba, uint Blocks)> ranges)
    {
        var size = Size(ranges.Length);
        destination[..size].Clear();
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)(size - 2));
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)(ranges.Length * DescriptorLength));
        for (var i = 0; i < ranges.Length; i++)
        {
            var d = destination.Slice(HeaderLength + i * DescriptorLength, DescriptorLength);
            BinaryPrimitives.WriteUInt64BigEndian(d, ranges[i].Lba);
            BinaryPrimitives.WriteUInt32BigEndian(d[8..], ranges[i].Blocks);
        }
        return size;
    }
}
