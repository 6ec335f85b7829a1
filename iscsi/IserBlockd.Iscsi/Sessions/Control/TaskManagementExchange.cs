using IserBlockd.Iscsi.Pdu;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>Task management (RFC 7143 §11.5, §11.6): ABORT TASK and LOGICAL UNIT RESET, always immediate.</summary>
internal static class TaskManagementExchange
{
    public static async Task<TaskManagementResponse> RunAsync(IscsiSession session, FullFeaturePhase? connection, TaskManagementFunction function,
        ulong lun, uint referencedTag, uint refCmdSN, CancellationToken cancellationToken)
    {
        var request = new ControlRequest(ControlKind.TaskManagement) { Function = function, Lun = lun, ReferencedTaskTag = referencedTag, RefCmdSN = refCmdSN };
        var response = await session.SendControlAsync(request, connection).WaitAsync(cancellationToken).ConfigureAwait(false);
        return TaskManagementResponsePdu.Read(response.Header).Response;
    }

    public static void Write(ControlRequest request, Span<byte> header, uint cmdSN, uint expStatSN) => new TaskManagementRequestPdu
    {
        Immediate = true,
        Function = request.Function,
        Lun = Scsi.LunAddress.Encode(request.Lun),
        InitiatorTaskTag = request.Itt,
        ReferencedTaskTag = request.ReferencedTaskTag,
        CmdSN = cmdSN,
        ExpStatSN = expStatSN,
        // RefCmdSN names the aborted command, so that a target that never received it counts its CmdSN as received.
        RefCmdSN = request.RefCmdSN,
    }.Write(header);
}
