using Microsoft.Extensions.Logging;

namespace IserBlockd.Transport.Selection;

/// <summary>Every message of the transport choice, as source-generated (allocation-free when disabled) methods.</summary>
internal static partial class SelectionLog
{
    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "{Target}: {Reason}")]
    public static partial void Chose(ILogger logger, string target, string reason);
}
