using System.Diagnostics;
using IserBlockd.Iscsi.Pdu;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>NOP-Out / NOP-In (RFC 7143 §11.18, §11.19): our pings, and our answers to the target's.</summary>
internal static class NopExchange
{
    /// <summary>Sends a NOP-Out ping and waits for its NOP-In; returns the round-trip time.</summary>
    public static async Task<TimeSpan> PingAsync(IscsiSession session, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        await session.SendControlAsync(new ControlRequest(ControlKind.Ping), null).WaitAsync(cancellationToken).ConfigureAwait(false);
        return Stopwatch.GetElapsedTime(started);
    }

    /// <summary>The header of our ping (immediate, ITT set, TTT reserved).</summary>
    public static void WritePing(ControlRequest request, Span<byte> header, uint cmdSN, uint expStatSN) => new NopOutPdu
    {
        Immediate = true,
        DataSegmentLength = request.Data.Length,
        InitiatorTaskTag = request.Itt,
        TargetTransferTag = BasicHeaderSegment.ReservedTag,
        CmdSN = cmdSN,
        ExpStatSN = expStatSN,
    }.Write(header);

    /// <summary>The header of our answer to a target's ping (ITT reserved, its TTT and LUN echoed).</summary>
    public static void WriteReply(ulong encodedLun, uint ttt, int dataLength, Span<byte> header, uint cmdSN, uint expStatSN) => new NopOutPdu
    {
        Immediate = true,
        DataSegmentLength = dataLength,
        Lun = encodedLun,
        InitiatorTaskTag = BasicHeaderSegment.ReservedTag,
        TargetTransferTag = ttt,
        CmdSN = cmdSN,
        ExpStatSN = expStatSN,
    }.Write(header);
}
