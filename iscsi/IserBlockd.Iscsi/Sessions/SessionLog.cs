using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>Every message of a session and its full feature phase, as source-generated (allocation-free when disabled) methods.</summary>
internal static partial class SessionLog
{
    [LoggerMessage(EventId = 301, Level = LogLevel.Information, Message = "logged in to {Target} at {Portal} over {Transport} (ISID {Isid}, TSIH {Tsih}): {Parameters}")]
    public static partial void LoggedIn(ILogger logger, string target, IscsiPortal portal, string transport, Isid isid, ushort tsih, NegotiatedParameters? parameters);

    [LoggerMessage(EventId = 302, Level = LogLevel.Debug, Message = "command window: CmdSN {CmdSN}, ExpCmdSN {ExpCmdSN}, MaxCmdSN {MaxCmdSN}")]
    public static partial void CommandWindow(ILogger logger, uint cmdSN, uint expCmdSN, uint maxCmdSN);

    [LoggerMessage(EventId = 303, Level = LogLevel.Information, Message = "re-issuing {Count} commands on the new connection")]
    public static partial void Reissuing(ILogger logger, int count);

    [LoggerMessage(EventId = 304, Level = LogLevel.Error, Message = "iSCSI connection to {Portal} for {Target} failed: {Reason}; {Count} commands {What}")]
    public static partial void ConnectionFailed(ILogger logger, IscsiPortal portal, string target, string reason, int count, string what);

    [LoggerMessage(EventId = 305, Level = LogLevel.Information, Message = "connection to {Portal} for {Target} closed")]
    public static partial void ConnectionClosed(ILogger logger, IscsiPortal portal, string target);

    [LoggerMessage(EventId = 306, Level = LogLevel.Information, Message = "waiting {Seconds:0.#} s (the target's Time2Wait) before logging in again")]
    public static partial void WaitingTime2Wait(ILogger logger, double seconds);

    [LoggerMessage(EventId = 307, Level = LogLevel.Debug, Message = "logout requested by the target did not complete: {Reason}")]
    public static partial void TargetLogoutIncomplete(ILogger logger, string reason);

    [LoggerMessage(EventId = 308, Level = LogLevel.Warning, Message = "renegotiation requested by the target failed: {Reason}")]
    public static partial void RenegotiationFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 309, Level = LogLevel.Warning, Message = "logout from {Target}: target answered {Response}")]
    public static partial void LogoutAnswered(ILogger logger, string target, LogoutResponse response);

    [LoggerMessage(EventId = 328, Level = LogLevel.Information, Message = "logout from {Target}: the target closed the connection instead of answering ({Reason}); every command had its answer, and the session is over at the target either way")]
    public static partial void LogoutAnswerLost(ILogger logger, string target, string reason);

    [LoggerMessage(EventId = 310, Level = LogLevel.Information, Message = "logged out of {Target}")]
    public static partial void LoggedOut(ILogger logger, string target);

    [LoggerMessage(EventId = 311, Level = LogLevel.Debug, Message = "logout during dispose failed: {Reason}")]
    public static partial void DisposeLogoutFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 312, Level = LogLevel.Trace, Message = "received {Opcode} ITT 0x{Itt:x8}, {Length} data bytes")]
    public static partial void Received(ILogger logger, IscsiOpcode opcode, uint itt, int length);

    [LoggerMessage(EventId = 313, Level = LogLevel.Trace, Message = "target ping (TTT 0x{Ttt:x8}), answering")]
    public static partial void TargetPing(ILogger logger, uint ttt);

    [LoggerMessage(EventId = 314, Level = LogLevel.Warning, Message = "target rejected {Opcode} (ITT 0x{Itt:x8}): {Reason}")]
    public static partial void TargetRejected(ILogger logger, IscsiOpcode opcode, uint itt, RejectReason reason);

    [LoggerMessage(EventId = 315, Level = LogLevel.Warning, Message = "target reports a SCSI asynchronous event on LUN {Lun}: {Sense}")]
    public static partial void AsyncScsiEvent(ILogger logger, ulong lun, string sense);

    [LoggerMessage(EventId = 316, Level = LogLevel.Warning, Message = "target requests logout within {Seconds} s; new commands wait for the next connection")]
    public static partial void LogoutRequested(ILogger logger, ushort seconds);

    [LoggerMessage(EventId = 317, Level = LogLevel.Information, Message = "target requests parameter renegotiation")]
    public static partial void RenegotiationRequested(ILogger logger);

    [LoggerMessage(EventId = 318, Level = LogLevel.Warning, Message = "target requests task termination on LUN {Lun}")]
    public static partial void TaskTerminationRequested(ILogger logger, ulong lun);

    [LoggerMessage(EventId = 319, Level = LogLevel.Information, Message = "target sent asynchronous event {Event} (vendor code {Code})")]
    public static partial void AsyncEventReceived(ILogger logger, AsyncEvent @event, byte code);

    [LoggerMessage(EventId = 320, Level = LogLevel.Debug, Message = "LUN {Lun}: {Command} succeeded with {Sense}")]
    public static partial void SucceededWithSense(ILogger logger, ulong lun, string command, SenseData? sense);

    [LoggerMessage(EventId = 321, Level = LogLevel.Error, Message = "a block I/O continuation threw on the receive loop; the connection carries on")]
    public static partial void ContinuationThrew(ILogger logger, Exception? exception);

    [LoggerMessage(EventId = 322, Level = LogLevel.Debug, Message = "LUN {Lun}: retrying {Command} after {Status} {Sense}")]
    public static partial void Retrying(ILogger logger, ulong lun, string command, string status, SenseData? sense);

    [LoggerMessage(EventId = 323, Level = LogLevel.Warning, Message = "ABORT TASK for ITT 0x{Itt:x8} answered {Response}; the command stays outstanding until its timeout")]
    public static partial void AbortNotConfirmed(ILogger logger, uint itt, TaskManagementResponse response);

    [LoggerMessage(EventId = 324, Level = LogLevel.Debug, Message = "ABORT TASK for ITT 0x{Itt:x8} did not complete: {Reason}")]
    public static partial void AbortIncomplete(ILogger logger, uint itt, string reason);

    [LoggerMessage(EventId = 325, Level = LogLevel.Warning, Message = "LUN {Lun}: reset ended {Count} commands ({Reissued} re-issued)")]
    public static partial void ResetEnded(ILogger logger, ulong lun, int count, int reissued);

    [LoggerMessage(EventId = 326, Level = LogLevel.Warning, Message = "{Target}: reported LUNs data has changed (from LUN {Lun}); a rescan would see the new inventory")]
    public static partial void ReportedLunsChanged(ILogger logger, string target, ulong lun);

    [LoggerMessage(EventId = 327, Level = LogLevel.Trace, Message = "sending {Kind} ITT 0x{Itt:x8} CmdSN {CmdSN}")]
    public static partial void Sending(ILogger logger, string kind, uint itt, uint cmdSN);

    [LoggerMessage(EventId = 399, Level = LogLevel.Information, Message = "renegotiation: offered {Offer}, the target answered {Answer}")]
    public static partial void Renegotiated(ILogger logger, string offer, string answer);
}
