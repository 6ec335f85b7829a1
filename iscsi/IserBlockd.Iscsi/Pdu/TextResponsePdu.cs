using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>Text Response (opcode 0x24, RFC 7143 §11.11).</summary>
public struct TextResponsePdu
{
    public bool Final { get; set; }
    public bool Continue { get; set; }
    public int DataSegmentLength { get; set; }
    public ulong Lun { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public uint TargetTransferTag { get; set; }
    public uint StatSN { get; set; }
    public uint ExpCmdSN { get; set; }
    public uint MaxCmdSN { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        WriteCommon(bhs, IscsiOpcode.TextResponse, false, (byte)((Final ? 0x80 : 0) | (Continue ? 0x40 : 0)), 0, DataSegmentLength);
        U64(bhs, 8, Lun);
        U32(bhs, 16, InitiatorTaskTag);
        U32(bhs, 20, TargetTransferTag);
        U32(bhs, 24, StatSN);
        U32(bhs, 28, ExpCmdSN);
        U32(bhs, 32, MaxCmdSN);
    }

    public static TextResponsePdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.TextResponse);
        return new TextResponsePdu
        {
            Final = (bhs[1] & 0x80) != 0,
            Continue = (bhs[1] & 0x40) != 0,
            DataSegmentLength = GetDataSegmentLength(bhs),
            Lun = U64(bhs, 8),
            InitiatorTaskTag = U32(bhs, 16),
            TargetTransferTag = U32(bhs, 20),
            StatSN = U32(bhs, 24),
            ExpCmdSN = U32(bhs, 28),
            MaxCmdSN = U32(bhs, 32),
        };
    }
}
