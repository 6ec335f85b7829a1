using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>Task management functions (RFC 7143 §11.5.1).</summary>
public enum TaskManagementFunction : byte
{
    AbortTask = 1,
    AbortTaskSet = 2,
    ClearAca = 3,
    ClearTaskSet = 4,
    LogicalUnitReset = 5,
    TargetWarmReset = 6,
    TargetColdReset = 7,
    TaskReassign = 8,
}

/// <summary>Task Management Function Request (opcode 0x02, RFC 7143 §11.5).</summary>
public struct TaskManagementRequestPdu
{
    public bool Immediate { get; set; }
    public TaskManagementFunction Function { get; set; }
    public ulong Lun { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public uint ReferencedTaskTag { get; set; }
    public uint CmdSN { get; set; }
    public uint ExpStatSN { get; set; }
    public uint RefCmdSN { get; set; }
    public uint ExpDataSN { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        WriteCommon(bhs, IscsiOpcode.TaskManagementRequest, Immediate, (byte)(0x80 | ((byte)Function & 0x7f)), 0, 0);
        U64(bhs, 8, Lun);
        U32(bhs, 16, InitiatorTaskTag);
        U32(bhs, 20, ReferencedTaskTag);
        U32(bhs, 24, CmdSN);
        U32(bhs, 28, ExpStatSN);
        U32(bhs, 32, RefCmdSN);
        U32(bhs, 36, ExpDataSN);
    }

    public static TaskManagementRequestPdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.TaskManagementRequest);
        return new TaskManagementRequestPdu
        {
            Immediate = IsImmediate(bhs),
            Function = (TaskManagementFunction)(bhs[1] & 0x7f),
            Lun = U64(bhs, 8),
            InitiatorTaskTag = U32(bhs, 16),
            ReferencedTaskTag = U32(bhs, 20),
            CmdSN = U32(bhs, 24),
            ExpStatSN = U32(bhs, 28),
            RefCmdSN = U32(bhs, 32),
            ExpDataSN = U32(bhs, 36),
        };
    }
}
