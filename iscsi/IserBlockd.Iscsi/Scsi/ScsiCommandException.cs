using IserBlockd.Iscsi.Pdu;
using LinuxErrno = IserBlockd.Primitives.Native.Errno;

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

    /// <summary>The errno a Linux block device would report, close to scsi_result_to_blk_status.</summary>
    public int Errno
    {
        get
        {
            if (Response != IscsiServiceResponse.CommandCompleted) return LinuxErrno.EIO;
            switch (Status)
            {
                case ScsiStatus.Busy or ScsiStatus.TaskSetFull: return LinuxErrno.EBUSY;
                case ScsiStatus.ReservationConflict: return LinuxErrno.EPERM;
            }
            if (Sense is not { } s) return LinuxErrno.EIO;
            return (s.Key, s.AdditionalSenseCode, s.AdditionalSenseCodeQualifier) switch
            {
                (SenseKey.DataProtect, 0x27, 0x07) => LinuxErrno.ENOSPC,
                (SenseKey.DataProtect, _, _) => LinuxErrno.EPERM,
                (SenseKey.IllegalRequest, 0x20, _) => LinuxErrno.EOPNOTSUPP,
                (SenseKey.IllegalRequest, _, _) => LinuxErrno.EINVAL,
                (SenseKey.NotReady, 0x3a, _) => LinuxErrno.ENOMEDIUM,
                _ => LinuxErrno.EIO,
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
