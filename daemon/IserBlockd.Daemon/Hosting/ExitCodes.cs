namespace IserBlockd.Daemon.Hosting;

/// <summary>Exit codes of <c>iserblockd run</c> and <c>check-config</c>; <c>iserblockd export</c> and iserblockctl share
/// <see cref="Cli.CtlExitCodes"/>, of which these are the same numbers, plus 78.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>A failure at run time: the control socket cannot be bound, ...</summary>
    public const int Failure = 1;
    /// <summary>ISCSI_ERR_INVAL: the command line is wrong.</summary>
    public const int Usage = Cli.CtlExitCodes.Invalid;
    /// <summary>EX_CONFIG: the configuration file is broken (systemd does not restart the service for it).</summary>
    public const int Config = 78;
}
