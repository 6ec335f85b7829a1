namespace IserBlockd.Daemon.Cli;

/// <summary>
/// Exit codes of iserblockctl, iscsiadm's numbers (open-iscsi iscsi_err.h) where one exists, so that scripts
/// written for iscsiadm read them the same way.
/// </summary>
public static class CtlExitCodes
{
    public const int Ok = 0;
    /// <summary>ISCSI_ERR: anything else.</summary>
    public const int Failure = 1;
    /// <summary>ISCSI_ERR_TRANS: could not connect (refused, unreachable, reset).</summary>
    public const int Transport = 4;
    /// <summary>ISCSI_ERR_LOGIN: the target refused the login (parameters, version, protocol error).</summary>
    public const int Login = 5;
    /// <summary>ISCSI_ERR_INVAL: bad command line, unreadable or too open secret file.</summary>
    public const int Invalid = 7;
    /// <summary>ISCSI_ERR_TRANS_TIMEOUT: connect or login timed out.</summary>
    public const int Timeout = 8;
    /// <summary>ISCSI_ERR_TRANS_NOT_FOUND: the requested transport is not available here (e.g. iSER without RDMA).</summary>
    public const int TransportNotFound = 12;
    /// <summary>ISCSI_ERR_NO_OBJS_FOUND: no such target or LUN.</summary>
    public const int NotFound = 21;
    /// <summary>ISCSI_ERR_LOGIN_AUTH_FAILED: CHAP failed either way, or the ACL refused us.</summary>
    public const int AuthenticationFailed = 24;
    /// <summary>ISCSI_ERR_AGAIN: the target is busy or out of resources; retrying may work.</summary>
    public const int Again = 29;
}
