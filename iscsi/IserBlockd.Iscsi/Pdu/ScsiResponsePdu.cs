using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>iSCSI service response in a SCSI Response (RFC 7143 §11.4.3).</summary>
public enum IscsiServiceResponse : byte
{
    CommandCompleted = 0x00,
    TargetFailure = 0x01,
}

/// <summary>
/// SCSI Response (opcode 0x21, RFC 7143 §11.4). The data segment, when present, is a 2-byte SenseLength,
/// the sense data and optional response data.
/// </summary>
public struct ScsiResponsePdu
{
    public bool BidirectionalOverflow { get; set; }
    public bool BidirectionalUnderflow { get; set; }
    public bool Overflow { get; set; }
    public bool Underflow { get; set; }
    public IscsiServiceResponse Response { get; set; }
    public byte Status { get; set; }
    public int DataSegmentLength { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public uint SnackTag { get; set; }
    public uint StatSN { get; set; }
    public uint ExpCmdSN { get; set; }
    public uint MaxCmdSN { get; set; }
    public uint ExpDataSN { get; set; }
    public uint BidirectionalReadResidualCount { get; set; }
    public uint ResidualCount { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        var flags = (byte)(0x80 | (BidirectionalOverflow ? 0x10 : 0) | (BidirectionalUnderflow ? 0x08 : 0) | (Overflow ? 0x04 : 0) | (Underflow ? 0x02 : 0));
        WriteCommon(bhs, IscsiOpcode.ScsiResponse, false, flags, 0, DataSegmentLength);
        bhs[2] = (byte)Response;
        bhs[3] = Status;
        U32(bhs, 16, InitiatorTaskTag);
        U32(bhs, 20, SnackTag);
        U32(bhs, 24, StatSN);
        U32(bhs, 28, ExpCmdSN);
        U32(bhs, 32, MaxCmdSN);
        U32(bhs, 36, ExpDataSN);
        U32(bhs, 40, BidirectionalReadResidualCount);
        U32(bhs, 44, ResidualCount);
    }

    public static ScsiResponsePdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.ScsiResponse);
        return new ScsiResponsePdu
        {
            BidirectionalOverflow = (bhs[1] & 0x10) != 0,
            BidirectionalUnderflow = (bhs[1] & 0x08) != 0,
            Overflow = (bhs[1] & 0x04) != 0,
            Underflow = (bhs[1] & 0x02) != 0,
            Response = (IscsiServiceResponse)bhs[2],
            Status = bhs[3],
            DataSegmentLength = GetDataSegmentLength(bhs),
            InitiatorTaskTag = U32(bhs, 16),
            SnackTag = U32(bhs, 20),
            StatSN = U32(bhs, 24),
            ExpCmdSN = U32(bhs, 28),
            MaxCmdSN = U32(bhs, 32),
            ExpDataSN = U32(bhs, 36),
            BidirectionalReadResidualCount = U32(bhs, 40),
            ResidualCount = U32(bhs, 44),
        };
    }
}
