namespace IserBlockd.Daemon.Control;

/// <summary>The answer to one <see cref="ControlSocketRequest"/>: a JSON object on one line.</summary>
public sealed class ControlSocketResponse
{
    public bool Ok { get; set; }
    public ControlError? Error { get; set; }
    /// <summary>A sentence for people, for commands that change something.</summary>
    public string? Message { get; set; }
    public List<SessionInfo>? Sessions { get; set; }
    public StatusInfo? Status { get; set; }
    public List<LunDescription>? Luns { get; set; }

    public static ControlSocketResponse Success(string? message = null) => new() { Ok = true, Message = message };

    public static ControlSocketResponse Failure(string code, string message) =>
        new() { Ok = false, Error = new ControlError { Code = code, Message = message } };
}

public sealed class ControlError
{
    /// <summary>One of <see cref="ControlErrorCodes"/>.</summary>
    public string Code { get; set; } = ControlErrorCodes.Internal;
    public string Message { get; set; } = "";
}

/// <summary>Error classes on the control socket, and the exit code iserblockctl returns for each (the one table, <see cref="Cli.ExitCodes"/>).</summary>
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
    /// <summary>The node is not logged in, and the command needs its session.</summary>
    public const string NotConnected = "not-connected";
    /// <summary>The configuration file does not validate (reload): nothing was changed.</summary>
    public const string ConfigInvalid = "config-invalid";

    public static int ExitCode(string code) => code switch
    {
        LoginFailed => Cli.ExitCodes.Login,
        ConfigInvalid => Cli.ExitCodes.ConfigInvalid,
        BadRequest => Cli.ExitCodes.Invalid,
        LogoutFailed => Cli.ExitCodes.Logout,
        AccessDenied => Cli.ExitCodes.AccessDenied,
        AlreadyDone => Cli.ExitCodes.AlreadyDone,
        NotRunning => Cli.ExitCodes.NotRunning,
        NotFound => Cli.ExitCodes.NotFound,
        AuthenticationFailed => Cli.ExitCodes.AuthenticationFailed,
        Busy => Cli.ExitCodes.Busy,
        NotConnected => Cli.ExitCodes.NotConnected,
        _ => Cli.ExitCodes.Failure,
    };
}
