using IserBlockd.BlockDev.Nbd.Protocol;
using Microsoft.Extensions.Logging;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>Every message the NBD server logs, as source-generated (allocation-free when disabled) methods.</summary>
internal static partial class NbdLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "NBD server listening on {Endpoint}")]
    public static partial void Listening(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "NBD client {Peer} connected")]
    public static partial void Connected(ILogger logger, string peer);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "NBD client {Peer} entered transmission on export '{Export}' (structured replies: {Structured}, flags: {Flags})")]
    public static partial void TransmissionStarted(ILogger logger, string peer, NbdExport export, bool structured, NbdTransmissionFlags flags);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "NBD client {Peer} on export '{Export}' disconnected: {Reason}")]
    public static partial void Disconnected(ILogger logger, string peer, NbdExport export, string reason);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "NBD client {Peer} sent a request with bad magic 0x{Magic:x8}; disconnecting it")]
    public static partial void BadRequestMagic(ILogger logger, string peer, uint magic);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "NBD client {Peer} went away {Received} bytes into a {Length}-byte WRITE payload at offset {Offset}; the partial write was dropped, nothing reached the device")]
    public static partial void VanishedMidWrite(ILogger logger, string peer, long received, long length, long offset);

    [LoggerMessage(EventId = 7, Level = LogLevel.Debug, Message = "NBD client {Peer}: {Command} at {Offset}+{Length} (flags {Flags}) refused with {Error}: {Reason}")]
    public static partial void RequestRefused(ILogger logger, string peer, NbdCommand command, ulong offset, uint length, NbdCommandFlags flags, BlockError error, string reason);

    [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "NBD client {Peer} sent a {Length}-byte payload for a refused WRITE, more than the {Limit} bytes the server will skip; disconnecting it")]
    public static partial void OversizedPayload(ILogger logger, string peer, uint length, long limit);

    [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "Export '{Export}': {Command} at {Offset}+{Length} failed on the device")]
    public static partial void DeviceFailure(ILogger logger, Exception exception, NbdExport export, NbdCommand command, long offset, long length);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Sending to NBD client {Peer} failed; replies still pending are dropped")]
    public static partial void SendFailed(ILogger logger, Exception exception, string peer);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "NBD client {Peer} broke the handshake: {Reason}")]
    public static partial void HandshakeFailed(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = 12, Level = LogLevel.Debug, Message = "NBD client {Peer}: option {Option} answered {Reply}")]
    public static partial void OptionAnswered(ILogger logger, string peer, NbdOption option, NbdOptionReplyType reply);

    [LoggerMessage(EventId = 13, Level = LogLevel.Error, Message = "NBD connection {Peer} failed unexpectedly")]
    public static partial void ConnectionFailed(ILogger logger, Exception exception, string peer);

    [LoggerMessage(EventId = 15, Level = LogLevel.Information, Message = "NBD client {Peer} started TLS ({Protocol}, {Client})")]
    public static partial void TlsStarted(ILogger logger, string peer, System.Security.Authentication.SslProtocols protocol, string client);

    [LoggerMessage(EventId = 16, Level = LogLevel.Warning, Message = "Export '{Export}' has its maximum of {Max} client connections; refusing {Peer} and any more until one closes")]
    public static partial void ConnectionLimitReached(ILogger logger, NbdExport export, int max, string peer);

    [LoggerMessage(EventId = 17, Level = LogLevel.Debug, Message = "Export '{Export}' refused {Peer}: it has its maximum of {Max} client connections")]
    public static partial void ConnectionRefused(ILogger logger, NbdExport export, int max, string peer);

    [LoggerMessage(EventId = 18, Level = LogLevel.Warning, Message = "NBD client {Peer} on export '{Export}' took up no reply for {Seconds} s; disconnecting it (its buffers return to the pool)")]
    public static partial void SendTimedOut(ILogger logger, string peer, NbdExport export, double seconds);

    [LoggerMessage(EventId = 14, Level = LogLevel.Error, Message = "Accepting NBD connections on {Endpoint} failed")]
    public static partial void AcceptFailed(ILogger logger, Exception exception, string endpoint);
}
