using System.Net;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Interop;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Transport.Iser;

/// <summary>Every message the iSER transport logs, as source-generated (allocation-free when disabled) methods.</summary>
internal static partial class IserLog
{
    [LoggerMessage(EventId = 101, Level = LogLevel.Debug, Message = "iSER: ITT 0x{Itt:x8}: the {Length}-byte task buffer is not registered memory; copying through a bounce buffer (rent data buffers from the transport's registered pool to avoid the copy)")]
    public static partial void BounceCopy(ILogger logger, uint itt, int length);

    [LoggerMessage(EventId = 102, Level = LogLevel.Debug, Message = "iSER: ITT 0x{Itt:x8}: the {Length}-byte task buffer is larger than any bounce buffer; registering it for this command")]
    public static partial void PinnedForCommand(ILogger logger, uint itt, int length);

    [LoggerMessage(EventId = 103, Level = LogLevel.Debug, Message = "iSER: the target opens a window of {Window} commands; {Depth} receive buffers are posted for answers, so at most that many are in flight")]
    public static partial void WindowAboveQueueDepth(ILogger logger, int window, int depth);

    [LoggerMessage(EventId = 104, Level = LogLevel.Debug, Message = "iSER full feature phase: InitiatorRecvDataSegmentLength={Receive} TargetRecvDataSegmentLength={Send} MaxOutstandingUnexpectedPDUs(target)={Unexpected}")]
    public static partial void FullFeaturePhase(ILogger logger, int receive, int send, long unexpected);

    [LoggerMessage(EventId = 105, Level = LogLevel.Debug, Message = "iSER connection to {Remote} failed: {Reason}")]
    public static partial void ConnectionFailed(ILogger logger, EndPoint? remote, string reason);

    [LoggerMessage(EventId = 106, Level = LogLevel.Debug, Message = "iSER: disconnect failed: {Reason}")]
    public static partial void DisconnectFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 107, Level = LogLevel.Debug, Message = "iSER: {Receives} receives and {Sends} sends had not flushed after {Timeout} s; destroying the queue pair anyway")]
    public static partial void DrainTimedOut(ILogger logger, int receives, int sends, double timeout);

    [LoggerMessage(EventId = 108, Level = LogLevel.Warning, Message = "iSER: tearing down the queue pair failed: {Reason}")]
    public static partial void TeardownFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 109, Level = LogLevel.Debug, Message = "iSER: {Endpoint}: {Reason}")]
    public static partial void EndpointFailed(ILogger logger, IPEndPoint endpoint, string reason);

    [LoggerMessage(EventId = 110, Level = LogLevel.Trace, Message = "iSER: resolving {Endpoint}")]
    public static partial void Resolving(ILogger logger, IPEndPoint endpoint);

    [LoggerMessage(EventId = 111, Level = LogLevel.Trace, Message = "iSER: {Endpoint} resolved to device {Device}")]
    public static partial void Resolved(ILogger logger, IPEndPoint endpoint, string? device);

    [LoggerMessage(EventId = 112, Level = LogLevel.Trace, Message = "iSER: {Receives} receives posted on QP 0x{Qp:x}; connecting")]
    public static partial void ReceivesPosted(ILogger logger, int receives, uint qp);

    [LoggerMessage(EventId = 113, Level = LogLevel.Debug, Message = "iSER: connected to {Endpoint} from {Local} on {Device} (QP 0x{Qp:x}); target private data: {PrivateData}; remote access {Scope}")]
    public static partial void Connected(ILogger logger, IPEndPoint endpoint, EndPoint? local, string device, uint qp, string privateData, string scope);

    [LoggerMessage(EventId = 114, Level = LogLevel.Error, Message = "iSER: completion handler failed for wr_id 0x{WrId:x} ({Status})")]
    public static partial void CompletionHandlerFailed(ILogger logger, Exception exception, ulong wrId, IbvWcStatus status);

    [LoggerMessage(EventId = 115, Level = LogLevel.Debug, Message = "iSER: completion for an unknown wr_id 0x{WrId:x} ({Status})")]
    public static partial void UnknownCompletion(ILogger logger, ulong wrId, IbvWcStatus status);

    [LoggerMessage(EventId = 116, Level = LogLevel.Debug, Message = "iSER: RDMA-CM event {Event} on an established connection")]
    public static partial void UnexpectedCmEvent(ILogger logger, RdmaCmEvent @event);

    [LoggerMessage(EventId = 117, Level = LogLevel.Debug, Message = "iSER: CM event watcher ended with {Reason}")]
    public static partial void CmWatcherEnded(ILogger logger, string reason);
}
