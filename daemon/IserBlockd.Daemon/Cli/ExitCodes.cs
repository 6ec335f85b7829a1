namespace IserBlockd.Daemon.Cli;

/// <summary>
/// The one exit-code table of iserblockctl and iserblockd (run, check-config, export): iscsiadm's numbers (open-iscsi
/// iscsi_err.h), so that scripts written for iscsiadm read them the same way, and EX_CONFIG for a broken configuration
/// file. README.md lists them once.
/// </summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>ISCSI_ERR: anything else.</summary>
    public const int Failure = 1;
    /// <summary>ISCSI_ERR_TRANS: could not connect (refused, unreachable, reset).</summary>
    public const int Transport = 4;
    /// <summary>ISCSI_ERR_LOGIN: the target refused the login (parameters, version, protocol error).</summary>
    public const int Login = 5;
    /// <summary>ISCSI_ERR_IDBM: the daemon's configuration file does not validate (reload).</summary>
    public const int ConfigInvalid = 6;
    /// <summary>ISCSI_ERR_INVAL: bad command line, unreadable or too open secret file.</summary>
    public const int Invalid = 7;
    /// <summary>ISCSI_ERR_TRANS_TIMEOUT: connect or login timed out.</summary>
    public const int Timeout = 8;
    /// <summary>ISCSI_ERR_TRANS_NOT_FOUND: the requested transport is not available here (e.g. iSER without RDMA).</summary>
    public const int TransportNotFound = 12;
    /// <summary>ISCSI_ERR_LOGOUT: the logout was refused (a device of the node is in use).</summary>
    public const int Logout = 10;
    /// <summary>ISCSI_ERR_ACCESS: permission denied (the control socket, a kernel device without root).</summary>
    public const int AccessDenied = 13;
    /// <summary>ISCSI_ERR_SESS_EXISTS: already done (logged in, mapped).</summary>
    public const int AlreadyDone = 15;
    /// <summary>ISCSI_ERR_ISCSID_NOTCONN: the daemon is not running.</summary>
    public const int NotRunning = 20;
    /// <summary>ISCSI_ERR_NO_OBJS_FOUND: no such target or LUN.</summary>
    public const int NotFound = 21;
    /// <summary>ISCSI_ERR_LOGIN_AUTH_FAILED: CHAP failed either way, or the ACL refused us.</summary>
    public const int AuthenticationFailed = 24;
    /// <summary>ISCSI_ERR_BUSY: a device is in use (mounted, open), so what would remove it was refused.</summary>
    public const int Busy = 28;
    /// <summary>ISCSI_ERR_AGAIN: the target is busy or out of resources; retrying may work.</summary>
    public const int Again = 29;
    /// <summary>ISCSI_ERR_SESSION_NOT_CONNECTED: the node is not logged in, and the command needs its session.</summary>
    public const int NotConnected = 32;
    /// <summary>EX_CONFIG: <c>iserblockd run</c> or <c>check-config</c> found the configuration file broken (systemd is told
    /// not to restart the service for it).</summary>
    public const int Config = 78;
}
