using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>Logout reason codes (RFC 7143 §11.14.1).</summary>
public enum LogoutReason : byte
{
    CloseSession = 0,
    CloseConnection = 1,
    RemoveConnectionForRecovery = 2,
}

/// <summary>Logout Request (opcode 0x06, RFC 7143 §11.14).</summary>
public struct LogoutRequestPdu
{
    public bool Immediate { get; set; }
    public LogoutReason Reason { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public ushort ConnectionId { get; set; }
    public uint CmdSN { get; set; }
    public uint ExpStatSN { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        WriteCommon(bhs, IscsiOpcode.LogoutRequest, Immediate, (byte)(0x80 | ((byte)Reason & 0x7f)), 0, 0);
        U32(bhs, 16, InitiatorTaskTag);
        U16(bhs, 20, ConnectionId);
        U32(bhs, 24, CmdSN);
        U32(bhs, 28, ExpStatSN);
    }

    public static LogoutRequestPdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.LogoutRequest);
        return new LogoutRequestPdu
        {
            Immediate = IsImmediate(bhs),
            Reason = (LogoutReason)(bhs[1] & 0x7f),
            InitiatorTaskTag = U32(bhs, 16),
            ConnectionId = U16(bhs, 20),
            CmdSN = U32(bhs, 24),
            ExpStatSN = U32(bhs, 28),
        };
    }
}
