using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>Ready To Transfer, R2T (opcode 0x31, RFC 7143 §11.8).</summary>
public struct ReadyToTransferPdu
{
    public ulong Lun { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public uint TargetTransferTag { get; set; }
    public uint StatSN { get; set; }
    public uint ExpCmdSN { get; set; }
    public uint MaxCmdSN { get; set; }
    public uint R2TSN { get; set; }
    public uint BufferOffset { get; set; }
    public uint DesiredDataTransferLength { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        WriteCommon(bhs, IscsiOpcode.ReadyToTransfer, false, 0x80, 0, 0);
        U64(bhs, 8, Lun);
        U32(bhs, 16, InitiatorTaskTag);
        U32(bhs, 20, TargetTransferTag);
        U32(bhs, 24, StatSN);
        U32(bhs, 28, ExpCmdSN);
        U32(bhs, 32, MaxCmdSN);
        U32(bhs, 36, R2TSN);
        U32(bhs, 40, BufferOffset);
        U32(bhs, 44, DesiredDataTransferLength);
    }

    public static ReadyToTransferPdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.ReadyToTransfer);
        return new ReadyToTransferPdu
        {
            Lun = U64(bhs, 8),
            InitiatorTaskTag = U32(bhs, 16),
            TargetTransferTag = U32(bhs, 20),
            StatSN = U32(bhs, 24),
            ExpCmdSN = U32(bhs, 28),
            MaxCmdSN = U32(bhs, 32),
            R2TSN = U32(bhs, 36),
            BufferOffset = U32(bhs, 40),
            DesiredDataTransferLength = U32(bhs, 44),
        };
    }
}
