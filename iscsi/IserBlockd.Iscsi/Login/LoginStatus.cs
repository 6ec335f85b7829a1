namespace IserBlockd.Iscsi.Login;

/// <summary>Login Response status classes and details (RFC 7143 §11.13.5) and the exception for each.</summary>
public static class LoginStatus
{
    public const byte Success = 0;
    public const byte Redirection = 1;
    public const byte InitiatorError = 2;
    public const byte TargetError = 3;

    public static string Describe(byte statusClass, byte detail) => (statusClass, detail) switch
    {
        (0, 0) => "success",
        (1, 1) => "target moved temporarily",
        (1, 2) => "target moved permanently",
        (2, 0) => "initiator error",
        (2, 1) => "authentication failure",
        (2, 2) => "authorization failure",
        (2, 3) => "target not found",
        (2, 4) => "target removed",
        (2, 5) => "unsupported version",
        (2, 6) => "too many connections",
        (2, 7) => "missing parameter",
        (2, 8) => "cannot include connection in session",
        (2, 9) => "session type not supported",
        (2, 10) => "session does not exist",
        (2, 11) => "invalid request during login",
        (3, 0) => "target error",
        (3, 1) => "service unavailable",
        (3, 2) => "out of resources",
        _ => "unknown status",
    };

    /// <summary>The exception for a failed login; <paramref name="context"/> reads like "login to iqn... at host:port".</summary>
    public static IscsiLoginException ToException(byte statusClass, byte detail, string context)
    {
        var message = $"{context} failed: {Describe(statusClass, detail)} (status 0x{statusClass:x2}{detail:x2})";
        return (statusClass, detail) switch
        {
            (2, 1) => new AuthenticationFailedException(message + "; check the CHAP user name and secret", statusClass, detail),
            (2, 2) => new AuthorizationFailedException(message + "; the target's ACL does not admit this initiator", statusClass, detail),
            (2, 3) or (2, 4) => new TargetNotFoundException(message, statusClass, detail),
            (2, 5) => new UnsupportedVersionException(message, statusClass, detail),
            (2, 6) or (3, 1) or (3, 2) => new TargetBusyException(message, statusClass, detail),
            (2, 7) or (2, 8) or (2, 9) or (2, 10) or (2, 11) => new LoginParameterException(message, statusClass, detail),
            (1, _) => new TargetRedirectException(message, statusClass, detail),
            _ => new IscsiLoginException(message, statusClass, detail),
        };
    }
}
