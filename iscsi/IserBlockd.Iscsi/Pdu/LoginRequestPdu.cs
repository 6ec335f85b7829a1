using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>Login Request (opcode 0x03, RFC 7143 §11.12). Always immediate.</summary>
public struct LoginRequestPdu
{
    public bool Transit { get; set; }
    public bool Continue { get; set; }
    public LoginStage CurrentStage { get; set; }
    public LoginStage NextStage { get; set; }
    public byte VersionMax { get; set; }
    public byte VersionMin { get; set; }
    public int DataSegmentLength { get; set; }
    public Isid Isid { get; set; }
    public ushort Tsih { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public ushort ConnectionId { get; set; }
    public uint CmdSN { get; set; }
    public uint ExpStatSN { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        var flags = (byte)((Transit ? 0x80 : 0) | (Continue ? 0x40 : 0) | ((byte)CurrentStage << 2) | (Transit ? (byte)NextStage : 0));
        WriteCommon(bhs, IscsiOpcode.LoginRequest, immediate: true, flags, 0, DataSegmentLength);
        bhs[2] = VersionMax;
        bhs[3] = VersionMin;
        Isid.Write(bhs[8..]);
        U16(bhs, 14, Tsih);
        U32(bhs, 16, InitiatorTaskTag);
        U16(bhs, 20, ConnectionId);
        U32(bhs, 24, CmdSN);
        U32(bhs, 28, ExpStatSN);
    }

    public static LoginRequestPdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.LoginRequest);
        return new LoginRequestPdu
        {
            Transit = (bhs[1] & 0x80) != 0,
            Continue = (bhs[1] & 0x40) != 0,
            CurrentStage = (LoginStage)((bhs[1] >> 2) & 3),
            NextStage = (LoginStage)(bhs[1] & 3),
            VersionMax = bhs[2],
            VersionMin = bhs[3],
            DataSegmentLength = GetDataSegmentLength(bhs),
            Isid = Isid.Read(bhs[8..]),
            Tsih = U16(bhs, 14),
            InitiatorTaskTag = U32(bhs, 16),
            ConnectionId = U16(bhs, 20),
            CmdSN = U32(bhs, 24),
            ExpStatSN = U32(bhs, 28),
        };
    }
}
