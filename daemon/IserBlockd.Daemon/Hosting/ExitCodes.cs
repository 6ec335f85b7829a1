namespace IserBlockd.Daemon.Hosting;

/// <summary>Exit codes of iserblockd (sysexits.h where one fits, so scripts and systemd can tell them apart).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>A failure at run time: the target refused the login, a device could not be attached, ...</summary>
    public const int Failure = 1;
    /// <summary>EX_USAGE: the command line is wrong.</summary>
    public const int Usage = 64;
    /// <summary>EX_UNAVAILABLE: no portal of the target could be reached.</summary>
    public const int Unavailable = 69;
    /// <summary>EX_SOFTWARE: a bug.</summary>
    public const int Software = 70;
    /// <summary>EX_NOPERM: e.g. a kernel device without root.</summary>
    public const int NoPermission = 77;
    /// <summary>EX_CONFIG: the configuration file is broken (systemd does not restart the service for it).</summary>
    public const int Config = 78;
}
