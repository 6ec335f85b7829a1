using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Sessions;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>What a SCSI midlayer retries, and how often: one policy for block I/O (retried inside the session) and for
/// every other command (retried by <see cref="ScsiLun.ExecuteWithRetryAsync(ReadOnlyMemory{byte}, ScsiDataDirection, Memory{byte}, CancellationToken)"/>).</summary>
internal static class ScsiRetryPolicy
{
    public const int UnitAttentionRetries = 10;
    public const int TransientRetries = 50;
    public static readonly TimeSpan TransientDelay = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// UNIT ATTENTION is reported once per event (reset, I_T nexus loss, capacity change; tgtd answers the first command
    /// of every session with 29/00) and the command is simply sent again; BUSY, TASK SET FULL, ABORTED COMMAND and
    /// "becoming ready" are sent again after <see cref="TransientDelay"/>. <paramref name="retriesSoFar"/> counts the
    /// retries already made for this command.
    /// </summary>
    public static ScsiRetry Decide(in ScsiCommandResult result, int retriesSoFar)
    {
        if (result.IsGood || result.Response != IscsiServiceResponse.CommandCompleted) return ScsiRetry.No;
        if (result.IsUnitAttention) return retriesSoFar < UnitAttentionRetries ? ScsiRetry.Now : ScsiRetry.No;
        var transient = result.Status is ScsiStatus.Busy or ScsiStatus.TaskSetFull
            || result.Sense is { Key: SenseKey.AbortedCommand }
            || result.Sense is { Key: SenseKey.NotReady, AdditionalSenseCode: 0x04, AdditionalSenseCodeQualifier: 0x01 };
        return transient && retriesSoFar < TransientRetries ? ScsiRetry.AfterDelay : ScsiRetry.No;
    }
}

internal enum ScsiRetry : byte
{
    No,
    Now,
    AfterDelay,
}
