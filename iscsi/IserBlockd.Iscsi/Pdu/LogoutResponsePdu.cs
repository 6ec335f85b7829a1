using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>Logout responses (RFC 7143 §11.15.1).</summary>
public enum LogoutResponse : byte
{
    ClosedSuccessfully = 0,
    CidNotFound = 1,
    RecoveryNotSupported = 2,
    CleanupFailed = 3,
}

/// <summary>Logout Response (opcode 0x26, RFC 7143 §11.15).</summary>
public struct LogoutResponsePdu
{
    public LogoutResponse Response { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public uint StatSN { get; set; }
    public uint ExpCmdSN { get; set; }
    public uint MaxCmdSN { get; set; }
    public ushort Time2Wait { get; set; }
    public ushort Time2Retain { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        WriteCommon(bhs, IscsiOpcode.LogoutResponse, false, 0x80, 0, 0);
        bhs[2] = (byte)Response;
        U32(bhs, 16, InitiatorTaskTag);
        U32(bhs, 24, StatSN);
        U32(bhs, 28, ExpCmdSN);
        U32(bhs, 32, MaxCmdSN);
        U16(bhs, 40, Time2Wait);
        U16(bhs, 42, Time2Retain);
    }

    public static LogoutResponsePdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.LogoutResponse);
        return new LogoutResponsePdu
        {
            Response = (LogoutResponse)bhs[2],
            InitiatorTaskTag = U32(bhs, 16),
            StatSN = U32(bhs, 24),
            ExpCmdSN = U32(bhs, 28),
            MaxCmdSN = U32(bhs, 32),
            Time2Wait = U16(bhs, 40),
            Time2Retain = U16(bhs, 42),
        };
    }
}
