using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Transport;

namespace IserBlockd.Daemon.Cli;

/// <summary>A command failed: the exit code and the one line printed on standard error.</summary>
public sealed class CliFailure(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    /// <summary>Maps what the iSCSI core throws to iscsiadm-style exit codes with the core's one-line message.</summary>
    public static CliFailure From(Exception e) => e switch
    {
        CliFailure f => f,
        AuthenticationFailedException or TargetAuthenticationFailedException or AuthorizationFailedException or ChapAlgorithmMismatchException
            => new CliFailure(CtlExitCodes.AuthenticationFailed, e.Message),
        TargetNotFoundException => new CliFailure(CtlExitCodes.NotFound, e.Message),
        TargetBusyException => new CliFailure(CtlExitCodes.Again, e.Message),
        IscsiLoginException when e.Message.Contains("timed out", StringComparison.Ordinal) => new CliFailure(CtlExitCodes.Timeout, e.Message),
        IscsiLoginException => new CliFailure(CtlExitCodes.Login, e.Message),
        IscsiTransportException => new CliFailure(CtlExitCodes.Transport, e.Message),
        ScsiCommandException { Sense: { Key: SenseKey.IllegalRequest, AdditionalSenseCode: 0x25 } } s
            => new CliFailure(CtlExitCodes.NotFound, s.Message),
        IscsiException => new CliFailure(CtlExitCodes.Failure, e.Message),
        OperationCanceledException => new CliFailure(CtlExitCodes.Failure, "interrupted"),
        _ => new CliFailure(CtlExitCodes.Failure, e.Message),
    };
}
