using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Sessions;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>
/// What the core retries, and how, as the Linux SCSI midlayer (scsi_decide_disposition): one policy for every
/// command that is not issued raw (<see cref="IscsiSession.ExecuteAsync"/> gives the caller the status itself).
/// </summary>
internal static class ScsiRetryPolicy
{
    public const int UnitAttentionRetries = 10;
    public static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(20);
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(1);

    /// <summary>
    /// UNIT ATTENTION is reported once per event (reset, I_T nexus loss, capacity change; tgtd answers the first command
    /// of every session with 29/00) and the command is simply sent again (<see cref="TimeSpan.Zero"/>); BUSY, TASK SET
    /// FULL, ABORTED COMMAND and NOT READY "becoming ready" are sent again after a backoff (20 ms doubling to 1 s) for
    /// as long as the command timeout allows (<paramref name="retryUntil"/>). Null: no retry.
    /// </summary>
    public static TimeSpan? Decide(in ScsiCommandResult result, int retriesSoFar, long now, long retryUntil)
    {
        if (result.IsSuccess || result.Response != IscsiServiceResponse.CommandCompleted) return null;
        if (result.IsUnitAttention) return retriesSoFar < UnitAttentionRetries ? TimeSpan.Zero : null;
        var transient = result.Status is ScsiStatus.Busy or ScsiStatus.TaskSetFull
            || result.Sense is { Key: SenseKey.AbortedCommand }
            || result.Sense is { Key: SenseKey.NotReady, AdditionalSenseCode: 0x04, AdditionalSenseCodeQualifier: 0x01 or 0x07 or 0x08 or 0x09 or 0x0a or 0x14 };
        if (!transient) return null;
        var backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, FirstBackoff.Ticks << Math.Min(retriesSoFar, 10)));
        return now + TaskLifecycle.ToTicks(backoff) <= retryUntil ? backoff : null;
    }

    /// <summary>
    /// Block I/O that ended well must also have moved what it asked: only a READ or WRITE that moved less (or the
    /// target wanted to move more) is a lost block. tgtd reports the parameter list of UNMAP and the block of WRITE
    /// SAME as not taken (residual = its length) while doing the work.
    /// </summary>
    public static Exception? CheckTransfer(ScsiTask task, in ScsiCommandResult result)
    {
        if (task.Mode != ScsiTaskMode.BlockIo || task.Cdb[0] is ScsiOpcode.Unmap or ScsiOpcode.WriteSame16) return null;
        if (result.Underflow && result.ResidualCount > 0)
            return new ScsiCommandException($"{task.CommandName} (a short transfer: {result.BytesTransferred} of {result.TransferLength} bytes)", result.Status, null);
        if (result.Overflow && result.ResidualCount > 0)
            return new ScsiCommandException($"{task.CommandName} (the target had {result.ResidualCount} bytes more than the {result.TransferLength} asked: residual overflow)", result.Status, null);
        return null;
    }
}
