using IserBlockd.Iscsi.Pdu;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>
/// A SCSI command ended without GOOD status: the message reads like
/// "READ(16) failed: CHECK CONDITION, MEDIUM ERROR: unrecovered read error (ASC/ASCQ 11/00) at 2048".
/// <see cref="Errno"/> suggests the Linux error number a block layer would report (for NBD replies).
/// </summary>
public sealed class ScsiCommandException : IscsiException
{
    public ScsiCommandException(string command, ScsiStatus status, SenseData? sense, IscsiServiceResponse response = IscsiServiceResponse.CommandCompleted)
        : base(FormatMessage(command, status, sense, response))
    {
        Command = command;
        Status = status;
        Sense = sense;
        Response = response;
    }

    public string Command { get; }
    public ScsiStatus Status { get; }
    public SenseData? Sense { get; }
    public IscsiServiceResponse Response { get; }

    public const int EIO = 5;
    public const int EPERM = 1;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int EBUSY = 16;
    public const int EOPNOTSUPP = 95;
    public const int ENOMEDIUM = 123;

    /// <summary>The errno a Linux block device would report, close to scsi_result_to_blk_status.</summary>
    public int Errno
    {
        get
        {
            if (Response != IscsiServiceResponse.CommandCompleted) return EIO;
            switch (Status)
            {
                case ScsiStatus.Busy or ScsiStatus.TaskSetFull: return EBUSY;
                case ScsiStatus.ReservationConflict: return EPERM;
            }
            if (Sense is not { } s) return EIO;
            return (s.Key, s.AdditionalSenseCode, s.AdditionalSenseCodeQualifier) switch
            {
                (SenseKey.DataProtect, 0x27, 0x07) => ENOSPC,
                (SenseKey.DataProtect, _, _) => EPERM,
                (SenseKey.IllegalRequest, 0x20, _) => EOPNOTSUPP,
                (SenseKey.IllegalRequest, _, _) => EINVAL,
                (SenseKey.NotReady, 0x3a, _) => ENOMEDIUM,
                _ => EIO,
            };
        }
    }

    public static string Describe(ScsiStatus status) => status switch
    {
        ScsiStatus.Good => "GOOD",
        ScsiStatus.CheckCondition => "CHECK CONDITION",
        ScsiStatus.ConditionMet => "CONDITION MET",
        ScsiStatus.Busy => "BUSY",
        ScsiStatus.ReservationConflict => "RESERVATION CONFLICT",
        ScsiStatus.TaskSetFull => "TASK SET FULL",
        ScsiStatus.AcaActive => "ACA ACTIVE",
        ScsiStatus.TaskAborted => "TASK ABORTED",
        _ => $"status 0x{(byte)status:x2}",
    };

    private static string FormatMessage(string command, ScsiStatus status, SenseData? sense, IscsiServiceResponse response)
    {
        if (response != IscsiServiceResponse.CommandCompleted) return $"{command} failed: target failure (iSCSI response 0x{(byte)response:x2})";
        return sense is null ? $"{command} failed: {Describe(status)}" : $"{command} failed: {Describe(status)}, {sense}";
    }
}
