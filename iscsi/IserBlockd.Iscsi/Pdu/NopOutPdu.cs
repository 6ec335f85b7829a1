using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>
/// NOP-Out (opcode 0x00, RFC 7143 §11.18): a ping from the initiator (ITT set, TTT 0xffffffff) or the answer to a
/// target's NOP-In (ITT 0xffffffff, TTT copied from the NOP-In).
/// </summary>
public struct NopOutPdu
{
    public bool Immediate { get; set; }
    public int DataSegmentLength { get; set; }
    public ulong Lun { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public uint TargetTransferTag { get; set; }
    public uint CmdSN { get; set; }
    public uint ExpStatSN { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        WriteCommon(bhs, IscsiOpcode.NopOut, Immediate, 0x80, 0, DataSegmentLength);
        U64(bhs, 8, Lun);
        U32(bhs, 16, InitiatorTaskTag);
        U32(bhs, 20, TargetTransferTag);
        U32(bhs, 24, CmdSN);
        U32(bhs, 28, ExpStatSN);
    }

    public static NopOutPdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.NopOut);
        return new NopOutPdu
        {
            Immediate = IsImmediate(bhs),
            DataSegmentLength = GetDataSegmentLength(bhs),
            Lun = U64(bhs, 8),
            InitiatorTaskTag = U32(bhs, 16),
            TargetTransferTag = U32(bhs, 20),
            CmdSN = U32(bhs, 24),
            ExpStatSN = U32(bhs, 28),
        };
    }
}
