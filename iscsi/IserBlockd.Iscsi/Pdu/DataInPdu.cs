using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>
/// SCSI Data-In (opcode 0x25, RFC 7143 §11.7). With the S bit the PDU also carries the command's status
/// ("phase collapse"), and StatSN, Status and the residual fields are valid.
/// </summary>
public struct DataInPdu
{
    public bool Final { get; set; }
    public bool Acknowledge { get; set; }
    public bool Overflow { get; set; }
    public bool Underflow { get; set; }
    public bool HasStatus { get; set; }
    public byte Status { get; set; }
    public int DataSegmentLength { get; set; }
    public ulong Lun { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public uint TargetTransferTag { get; set; }
    public uint StatSN { get; set; }
    public uint ExpCmdSN { get; set; }
    public uint MaxCmdSN { get; set; }
    public uint DataSN { get; set; }
    public uint BufferOffset { get; set; }
    public uint ResidualCount { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        var flags = (byte)((Final ? 0x80 : 0) | (Acknowledge ? 0x40 : 0) | (Overflow ? 0x04 : 0) | (Underflow ? 0x02 : 0) | (HasStatus ? 0x01 : 0));
        WriteCommon(bhs, IscsiOpcode.DataIn, false, flags, 0, DataSegmentLength);
        bhs[3] = Status;
        U64(bhs, 8, Lun);
        U32(bhs, 16, InitiatorTaskTag);
        U32(bhs, 20, TargetTransferTag);
        U32(bhs, 24, StatSN);
        U32(bhs, 28, ExpCmdSN);
        U32(bhs, 32, MaxCmdSN);
        U32(bhs, 36, DataSN);
        U32(bhs, 40, BufferOffset);
        U32(bhs, 44, ResidualCount);
    }

    public static DataInPdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.DataIn);
        return new DataInPdu
        {
            Final = (bhs[1] & 0x80) != 0,
            Acknowledge = (bhs[1] & 0x40) != 0,
            Overflow = (bhs[1] & 0x04) != 0,
            Underflow = (bhs[1] & 0x02) != 0,
            HasStatus = (bhs[1] & 0x01) != 0,
            Status = bhs[3],
            DataSegmentLength = GetDataSegmentLength(bhs),
            Lun = U64(bhs, 8),
            InitiatorTaskTag = U32(bhs, 16),
            TargetTransferTag = U32(bhs, 20),
            StatSN = U32(bhs, 24),
            ExpCmdSN = U32(bhs, 28),
            MaxCmdSN = U32(bhs, 32),
            DataSN = U32(bhs, 36),
            BufferOffset = U32(bhs, 40),
            ResidualCount = U32(bhs, 44),
        };
    }
}
