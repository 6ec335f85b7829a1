using static IserBlockd.Iscsi.Pdu.BasicHeaderSegment;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>Task management responses (RFC 7143 §11.6.1).</summary>
public enum TaskManagementResponse : byte
{
    FunctionComplete = 0,
    TaskDoesNotExist = 1,
    LunDoesNotExist = 2,
    TaskStillAllegiant = 3,
    TaskAllegianceReassignmentNotSupported = 4,
    FunctionNotSupported = 5,
    FunctionAuthorizationFailed = 6,
    FunctionRejected = 255,
}

/// <summary>Task Management Function Response (opcode 0x22, RFC 7143 §11.6).</summary>
public struct TaskManagementResponsePdu
{
    public TaskManagementResponse Response { get; set; }
    public uint InitiatorTaskTag { get; set; }
    public uint StatSN { get; set; }
    public uint ExpCmdSN { get; set; }
    public uint MaxCmdSN { get; set; }

    public readonly void Write(Span<byte> bhs)
    {
        WriteCommon(bhs, IscsiOpcode.TaskManagementResponse, false, 0x80, 0, 0);
        bhs[2] = (byte)Response;
        U32(bhs, 16, InitiatorTaskTag);
        U32(bhs, 24, StatSN);
        U32(bhs, 28, ExpCmdSN);
        U32(bhs, 32, MaxCmdSN);
    }

    public static TaskManagementResponsePdu Read(ReadOnlySpan<byte> bhs)
    {
        Expect(bhs, IscsiOpcode.TaskManagementResponse);
        return new TaskManagementResponsePdu
        {
            Response = (TaskManagementResponse)bhs[2],
            InitiatorTaskTag = U32(bhs, 16),
            StatSN = U32(bhs, 24),
            ExpCmdSN = U32(bhs, 28),
            MaxCmdSN = U32(bhs, 32),
        };
    }
}
