using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>Text Request (opcode 0x04, RFC 7143 §11.10).</summary>
public struct TextRequestPdu
{
    public bool Immediate { get; set; }
    public bool Final { get; set; }
    public bool Continue { get; set; }
    public int DataSegmentLength { get; set; }
    public ulong Lun { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public uint TargetTransferTag { get; set; }
    public uint CmdSN { get; set; }
    public uint ExpStatSN { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        WriteCommon(bhs, IscsiOpcode.TextRequest, Immediate, (byte)((Final ? 0x80 : 0) | (Continue ? 0x40 : 0)), 0, DataSegmentLength);
        U64(bhs, 8, Lun);
        U32(bhs, 16, InitiatorTaskTag);
        U32(bhs, 20, TargetTransferTag);
        U32(bhs, 24, CmdSN);
        U32(bhs, 28, ExpStatSN);
    }

    public static TextRequestPdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.TextRequest);
        return new TextRequestPdu
        {
            Immediate = IsImmediate(bhs),
            Final = (bhs[1] & 0x80) != 0,
            Continue = (bhs[1] & 0x40) != 0,
            DataSegmentLength = GetDataSegmentLength(bhs),
            Lun = U64(bhs, 8),
            InitiatorTaskTag = U32(bhs, 16),
            TargetTransferTag = U32(bhs, 20),
            CmdSN = U32(bhs, 24),
            ExpStatSN = U32(bhs, 28),
        };
    }
}
