namespace IserBlockd.Daemon.Control;

/// <summary>The answer to one <see cref="ControlRequest"/>: a JSON object on one line.</summary>
public sealed class ControlResponse
{
    public bool Ok { get; set; }
    public ControlError? Error { get; set; }
    /// <summary>A sentence for people, for commands that change something.</summary>
    public string? Message { get; set; }
    public List<SessionInfo>? Sessions { get; set; }
    public StatusInfo? Status { get; set; }

    public static ControlResponse Success(string? message = null) => new() { Ok = true, Message = message };

    public static ControlResponse Failure(string code, string message) =>
        new() { Ok = false, Error = new ControlError { Code = code, Message = message } };
}

public sealed class ControlError
{
    /// <summary>One of <see cref="ControlErrorCodes"/>.</summary>
    public string Code { get; set; } = ControlErrorCodes.Internal;
    public string Message { get; set; } = "";
}

/// <summary>Error classes on the control socket, and the exit code iserblockctl returns for each
/// (iscsiadm's numbers from open-iscsi's iscsi_err.h, so scripts written for it read the same).</summary>
public static class ControlErrorCodes
{
    public const string BadRequest = "bad-request";
    public const string NotFound = "not-found";
    public const string AlreadyDone = "already";
    public const string LoginFailed = "login-failed";
    public const string AuthenticationFailed = "authentication-failed";
    public const string LogoutFailed = "logout-failed";
    public const string MapFailed = "map-failed";
    public const string AccessDenied = "access-denied";
    public const string NotRunning = "not-running";
    public const string Internal = "internal";
    /// <summary>A device is in use (mounted, open): what would remove it was refused.</summary>
    public const string Busy = "busy";
    /// <summary>The configuration file does not validate (reload): nothing was changed.</summary>
    public const string ConfigInvalid = "config-invalid";

    public static int ExitCode(string code) => code switch
    {
        LoginFailed => 5,           // ISCSI_ERR_LOGIN
        BadRequest => 7,            // ISCSI_ERR_INVAL
        LogoutFailed => 10,         // ISCSI_ERR_LOGOUT
        AccessDenied => 13,         // ISCSI_ERR_ACCESS
        AlreadyDone => 15,          // ISCSI_ERR_SESS_EXISTS
        NotRunning => 20,           // ISCSI_ERR_ISCSID_NOTCONN
        NotFound => 21,             // ISCSI_ERR_NO_OBJS_FOUND
        AuthenticationFailed => 24, // ISCSI_ERR_LOGIN_AUTH_FAILED
        ConfigInvalid => 6,         // ISCSI_ERR_IDBM: the node records (our configuration file)
        Busy => 28,                 // ISCSI_ERR_BUSY
        _ => 1,                     // ISCSI_ERR
    };
}
