using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>SCSI Data-Out (opcode 0x05, RFC 7143 §11.7). Unsolicited Data-Out carries TTT 0xffffffff.</summary>
public struct DataOutPdu
{
    public bool Final { get; set; }
    public int DataSegmentLength { get; set; }
    public ulong Lun { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public uint TargetTransferTag { get; set; }
    public uint ExpStatSN { get; set; }
    public uint DataSN { get; set; }
    public uint BufferOffset { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        WriteCommon(bhs, IscsiOpcode.DataOut, false, (byte)(Final ? 0x80 : 0), 0, DataSegmentLength);
        U64(bhs, 8, Lun);
        U32(bhs, 16, InitiatorTaskTag);
        U32(bhs, 20, TargetTransferTag);
        U32(bhs, 28, ExpStatSN);
        U32(bhs, 36, DataSN);
        U32(bhs, 40, BufferOffset);
    }

    public static DataOutPdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.DataOut);
        return new DataOutPdu
        {
            Final = (bhs[1] & 0x80) != 0,
            DataSegmentLength = GetDataSegmentLength(bhs),
            Lun = U64(bhs, 8),
            InitiatorTaskTag = U32(bhs, 16),
            TargetTransferTag = U32(bhs, 20),
            ExpStatSN = U32(bhs, 28),
            DataSN = U32(bhs, 36),
            BufferOffset = U32(bhs, 40),
        };
    }
}
