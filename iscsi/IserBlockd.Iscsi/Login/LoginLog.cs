using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Login;

/// <summary>Every message of login (the exchange and the session's login attempts), as source-generated (allocation-free when disabled) methods.</summary>
internal static partial class LoginLog
{
    [LoggerMessage(EventId = 101, Level = LogLevel.Debug, Message = "{Context}: offering {Keys}")]
    public static partial void Offering(ILogger logger, string context, string keys);

    [LoggerMessage(EventId = 102, Level = LogLevel.Debug, Message = "{Context}: CHAP with algorithm {Algorithm} as user {User}{Mutual}")]
    public static partial void ChapAs(ILogger logger, string context, Security.ChapAlgorithm algorithm, string user, string mutual);

    [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "{Context}: target moved {Kind} to {Portal}")]
    public static partial void Redirected(ILogger logger, string context, string kind, IscsiPortal portal);

    [LoggerMessage(EventId = 104, Level = LogLevel.Debug, Message = "{Context}: target answered {Keys}")]
    public static partial void TargetAnswered(ILogger logger, string context, string keys);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "{Reason}; logging in again offering CHAP_A={Offer}")]
    public static partial void RetryingWithChapOffer(ILogger logger, string reason, string offer);

    [LoggerMessage(EventId = 106, Level = LogLevel.Warning, Message = "{Reason}")]
    public static partial void LoginFailed(ILogger logger, string reason);
}
