using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>SAM task attributes carried in the ATTR field of a SCSI Command.</summary>
public enum TaskAttribute : byte
{
    Untagged = 0,
    Simple = 1,
    Ordered = 2,
    HeadOfQueue = 3,
    Aca = 4,
}

/// <summary>
/// SCSI Command (opcode 0x01, RFC 7143 §11.3). CDBs longer than 16 bytes continue in an Extended CDB AHS;
/// bidirectional commands carry the expected read length in an AHS.
/// </summary>
public struct ScsiCommandPdu
{
    public bool Immediate { get; set; }
    public bool Final { get; set; }
    public bool Read { get; set; }
    public bool Write { get; set; }
    public TaskAttribute Attribute { get; set; }
    public int DataSegmentLength { get; set; }
    public ulong Lun { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public uint ExpectedDataTransferLength { get; set; }
    public uint CmdSN { get; set; }
    public uint ExpStatSN { get; set; }
    public ReadOnlyMemory<byte> Cdb { get; set; }
    /// <summary>Expected read length of a bidirectional command (Read and Write both set).</summary>
    public uint? BidirectionalReadLength { get; set; }

    public readonly int TotalAhsLength
        => AdditionalHeaderSegment.ExtendedCdbSize(Cdb.Length)
           + (BidirectionalReadLength.HasValue ? AdditionalHeaderSegment.BidirectionalReadLengthSize : 0);

    /// <summary>BHS plus AHS length: what <see cref="WriteHeader"/> writes.</summary>
    public readonly int HeaderLength => BasicHeaderSegment.Length + TotalAhsLength;

    /// <summary>Writes the BHS and any AHS; returns the number of bytes written.</summary>
    public readonly int WriteHeader(Span<byte> header)
    {
        var cdb = Cdb.Span;
        if (cdb.Length is 0 or > 260) throw new ArgumentException($"CDB length {cdb.Length} is not 1..260", nameof(Cdb));
        var ahs = TotalAhsLength;
        var flags = (byte)((Final ? 0x80 : 0) | (Read ? 0x40 : 0) | (Write ? 0x20 : 0) | ((byte)Attribute & 7));
        WriteCommon(header, IscsiOpcode.ScsiCommand, Immediate, flags, ahs, DataSegmentLength);
        U64(header, 8, Lun);
        U32(header, 16, InitiatorTaskTag);
        U32(header, 20, ExpectedDataTransferLength);
        U32(header, 24, CmdSN);
        U32(header, 28, ExpStatSN);
        cdb[..Math.Min(16, cdb.Length)].CopyTo(header[32..]);
        var offset = BasicHeaderSegment.Length;
        if (cdb.Length > 16) offset += AdditionalHeaderSegment.WriteExtendedCdb(header[offset..], cdb);
        if (BidirectionalReadLength is uint bidi) offset += AdditionalHeaderSegment.WriteBidirectionalReadLength(header[offset..], bidi);
        return offset;
    }

    /// <summary>Parses a header (BHS followed by its AHS). The CDB is copied (16 bytes, or more with an extended CDB).</summary>
    public static ScsiCommandPdu ReadHeader(ReadOnlySpan<byte> header)
    {
        Expect(header, IscsiOpcode.ScsiCommand);
        var ahsLength = GetTotalAhsLength(header);
        if (header.Length < BasicHeaderSegment.Length + ahsLength)
            throw new IscsiProtocolException($"header announces {ahsLength} bytes of AHS but only {header.Length - BasicHeaderSegment.Length} follow");
        AdditionalHeaderSegment.Parse(header.Slice(BasicHeaderSegment.Length, ahsLength), out var cdbTail, out var bidi);
        var cdb = new byte[16 + cdbTail.Length];
        header.Slice(32, 16).CopyTo(cdb);
        cdbTail.CopyTo(cdb.AsSpan(16));
        return new ScsiCommandPdu
        {
            Immediate = IsImmediate(header),
            Final = (header[1] & 0x80) != 0,
            Read = (header[1] & 0x40) != 0,
            Write = (header[1] & 0x20) != 0,
            Attribute = (TaskAttribute)(header[1] & 7),
            DataSegmentLength = GetDataSegmentLength(header),
            Lun = U64(header, 8),
            InitiatorTaskTag = U32(header, 16),
            ExpectedDataTransferLength = U32(header, 20),
            CmdSN = U32(header, 24),
            ExpStatSN = U32(header, 28),
            Cdb = cdb,
            BidirectionalReadLength = bidi,
        };
    }
}
