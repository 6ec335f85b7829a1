using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.ConnectionPort;

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
            => new CliFailure(ExitCodes.AuthenticationFailed, e.Message),
        TargetNotFoundException => new CliFailure(ExitCodes.NotFound, e.Message),
        TargetBusyException => new CliFailure(ExitCodes.Again, e.Message),
        IscsiLoginException when e.Message.Contains("timed out", StringComparison.Ordinal) => new CliFailure(ExitCodes.Timeout, e.Message),
        IscsiLoginException => new CliFailure(ExitCodes.Login, e.Message),
        IscsiTransportException => new CliFailure(ExitCodes.Transport, e.Message),
        ScsiCommandException { Sense: { Key: SenseKey.IllegalRequest, AdditionalSenseCode: 0x25 } } s
            => new CliFailure(ExitCodes.NotFound, s.Message),
        IscsiException => new CliFailure(ExitCodes.Failure, e.Message),
        OperationCanceledException => new CliFailure(ExitCodes.Failure, "interrupted"),
        _ => new CliFailure(ExitCodes.Failure, e.Message),
    };
}
