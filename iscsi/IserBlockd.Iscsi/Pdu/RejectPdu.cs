using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>Reject reasons (RFC 7143 §11.17.1).</summary>
public enum RejectReason : byte
{
    Reserved = 0x01,
    DataDigestError = 0x02,
    SnackReject = 0x03,
    ProtocolError = 0x04,
    CommandNotSupported = 0x05,
    ImmediateCommandRejected = 0x06,
    TaskInProgress = 0x07,
    InvalidDataAck = 0x08,
    InvalidPduField = 0x09,
    LongOperationReject = 0x0a,
    DeprecatedNegotiationReset = 0x0b,
    WaitingForLogout = 0x0c,
}

/// <summary>Reject (opcode 0x3f, RFC 7143 §11.17). The data segment holds the header of the rejected PDU.</summary>
public struct RejectPdu
{
    public RejectReason Reason { get; set; }
    public int DataSegmentLength { get; set; }
    public uint StatSN { get; set; }
    public uint ExpCmdSN { get; set; }
    public uint MaxCmdSN { get; set; }
    public uint DataSN { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        WriteCommon(bhs, IscsiOpcode.Reject, false, 0x80, 0, DataSegmentLength);
        bhs[2] = (byte)Reason;
        U32(bhs, 16, ReservedTag);
        U32(bhs, 24, StatSN);
        U32(bhs, 28, ExpCmdSN);
        U32(bhs, 32, MaxCmdSN);
        U32(bhs, 36, DataSN);
    }

    public static RejectPdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.Reject);
        return new RejectPdu
        {
            Reason = (RejectReason)bhs[2],
            DataSegmentLength = GetDataSegmentLength(bhs),
            StatSN = U32(bhs, 24),
            ExpCmdSN = U32(bhs, 28),
            MaxCmdSN = U32(bhs, 32),
            DataSN = U32(bhs, 36),
        };
    }
}
