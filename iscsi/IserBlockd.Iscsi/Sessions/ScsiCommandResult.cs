using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// How a SCSI command ended: iSCSI service response, SCSI status, residuals and, for CHECK CONDITION, the decoded
/// sense data. GOOD completions carry no allocation.
/// </summary>
public readonly struct ScsiCommandResult
{
    public ScsiCommandResult(ScsiStatus status, IscsiServiceResponse response, int transferLength, uint residualCount, bool underflow, bool overflow, SenseData? sense)
    {
        Status = status;
        Response = response;
        TransferLength = transferLength;
        ResidualCount = residualCount;
        Underflow = underflow;
        Overflow = overflow;
        Sense = sense;
    }

    public ScsiStatus Status { get; }
    public IscsiServiceResponse Response { get; }
    /// <summary>The command's expected data transfer length.</summary>
    public int TransferLength { get; }
    public uint ResidualCount { get; }
    /// <summary>Less data moved than expected (short read, e.g. INQUIRY data shorter than the allocation length).</summary>
    public bool Underflow { get; }
    public bool Overflow { get; }
    public SenseData? Sense { get; }

    /// <summary>Bytes actually transferred: expected length minus any underflow residual.</summary>
    public int BytesTransferred => Underflow ? (int)Math.Max(0, TransferLength - (long)ResidualCount) : TransferLength;

    public bool IsGood => Response == IscsiServiceResponse.CommandCompleted && Status is ScsiStatus.Good or ScsiStatus.ConditionMet;

    /// <summary>GOOD, or CHECK CONDITION with RECOVERED ERROR: the command succeeded (the target fixed something on the way).</summary>
    public bool IsSuccess => IsGood
        || (Response == IscsiServiceResponse.CommandCompleted && Status == ScsiStatus.CheckCondition && Sense?.Key == SenseKey.RecoveredError);

    public bool IsUnitAttention => Status == ScsiStatus.CheckCondition && Sense?.Key == SenseKey.UnitAttention;
}
