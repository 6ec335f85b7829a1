using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>Login Response (opcode 0x23, RFC 7143 §11.13).</summary>
public struct LoginResponsePdu
{
    public bool Transit { get; set; }
    public bool Continue { get; set; }
    public LoginStage CurrentStage { get; set; }
    public LoginStage NextStage { get; set; }
    public byte VersionMax { get; set; }
    public byte VersionActive { get; set; }
    public int DataSegmentLength { get; set; }
    public Isid Isid { get; set; }
    public ushort Tsih { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public uint StatSN { get; set; }
    public uint ExpCmdSN { get; set; }
    public uint MaxCmdSN { get; set; }
    public byte StatusClass { get; set; }
    public byte StatusDetail { get; set; }

    public readonly ushort Status => (ushort)(StatusClass << 8 | StatusDetail);

    public readonly void Write(Span<byte> bhs)
    {
        var flags = (byte)((Transit ? 0x80 : 0) | (Continue ? 0x40 : 0) | ((byte)CurrentStage << 2) | (Transit ? (byte)NextStage : 0));
        WriteCommon(bhs, IscsiOpcode.LoginResponse, false, flags, 0, DataSegmentLength);
        bhs[2] = VersionMax;
        bhs[3] = VersionActive;
        Isid.Write(bhs[8..]);
        U16(bhs, 14, Tsih);
        U32(bhs, 16, InitiatorTaskTag);
        U32(bhs, 24, StatSN);
        U32(bhs, 28, ExpCmdSN);
        U32(bhs, 32, MaxCmdSN);
        bhs[36] = StatusClass;
        bhs[37] = StatusDetail;
    }

    public static LoginResponsePdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.LoginResponse);
        return new LoginResponsePdu
        {
            Transit = (bhs[1] & 0x80) != 0,
            Continue = (bhs[1] & 0x40) != 0,
            CurrentStage = (LoginStage)((bhs[1] >> 2) & 3),
            NextStage = (LoginStage)(bhs[1] & 3),
            VersionMax = bhs[2],
            VersionActive = bhs[3],
            DataSegmentLength = GetDataSegmentLength(bhs),
            Isid = Isid.Read(bhs[8..]),
            Tsih = U16(bhs, 14),
            InitiatorTaskTag = U32(bhs, 16),
            StatSN = U32(bhs, 24),
            ExpCmdSN = U32(bhs, 28),
            MaxCmdSN = U32(bhs, 32),
            StatusClass = bhs[36],
            StatusDetail = bhs[37],
        };
    }
}
