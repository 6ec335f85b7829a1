using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>Asynchronous events (RFC 7143 §11.9.1).</summary>
public enum AsyncEvent : byte
{
    ScsiAsyncEvent = 0,
    LogoutRequested = 1,
    ConnectionDropping = 2,
    SessionDropping = 3,
    NegotiationRequested = 4,
    TaskTerminationRequested = 5,
    VendorSpecific = 255,
}

/// <summary>
/// Asynchronous Message (opcode 0x32, RFC 7143 §11.9). Parameter1–3 meanings depend on the event
/// (for LogoutRequested, Parameter3 is the time to log out in seconds; for drops, Time2Wait/Time2Retain).
/// </summary>
public struct AsyncMessagePdu
{
    public int DataSegmentLength { get; set; }
    public ulong Lun { get; set; }
    public uint StatSN { get; set; }
    public uint ExpCmdSN { get; set; }
    public uint MaxCmdSN { get; set; }
    public AsyncEvent Event { get; set; }
    public byte VendorCode { get; set; }
    public ushort Parameter1 { get; set; }
    public ushort Parameter2 { get; set; }
    public ushort Parameter3 { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        WriteCommon(bhs, IscsiOpcode.AsyncMessage, false, 0x80, 0, DataSegmentLength);
        U64(bhs, 8, Lun);
        U32(bhs, 16, ReservedTag);
        U32(bhs, 24, StatSN);
        U32(bhs, 28, ExpCmdSN);
        U32(bhs, 32, MaxCmdSN);
        bhs[36] = (byte)Event;
        bhs[37] = VendorCode;
        U16(bhs, 38, Parameter1);
        U16(bhs, 40, Parameter2);
        U16(bhs, 42, Parameter3);
    }

    public static AsyncMessagePdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.AsyncMessage);
        return new AsyncMessagePdu
        {
            DataSegmentLength = GetDataSegmentLength(bhs),
            Lun = U64(bhs, 8),
            StatSN = U32(bhs, 24),
            ExpCmdSN = U32(bhs, 28),
            MaxCmdSN = U32(bhs, 32),
            Event = (AsyncEvent)bhs[36],
            VendorCode = bhs[37],
            Parameter1 = U16(bhs, 38),
            Parameter2 = U16(bhs, 40),
            Parameter3 = U16(bhs, 42),
        };
    }
}
