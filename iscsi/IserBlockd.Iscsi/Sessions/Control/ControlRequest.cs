using IserBlockd.Iscsi.Pdu;

namespace IserBlockd.Iscsi.Sessions;

internal enum ControlKind : byte
{
    Ping,
    TaskManagement,
    Text,
    Logout,
}

/// <summary>
/// A non-SCSI request (NOP-Out ping, task management, text, logout). Rare, so plainly allocated and completed
/// through a TaskCompletionSource with the response header and data copied out.
/// </summary>
internal sealed class ControlRequest
{
    public ControlRequest(ControlKind kind) => Kind = kind;

    public ControlKind Kind { get; }
    public uint Itt { get; set; }
    public bool Immediate { get; init; } = true;
    public ulong Lun { get; init; }
    public byte[] Data { get; init; } = [];

    // Task management.
    public TaskManagementFunction Function { get; init; }
    public uint ReferencedTaskTag { get; init; }
    public uint RefCmdSN { get; init; }

    // Text continuation.
    public uint TargetTransferTag { get; init; } = BasicHeaderSegment.ReservedTag;

    public TaskCompletionSource<ControlResponse> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Writes the request's BHS (each exchange formats its own PDU).</summary>
    public void WriteHeader(Span<byte> header, uint cmdSN, uint expStatSN)
    {
        switch (Kind)
        {
            case ControlKind.Ping: NopExchange.WritePing(this, header, cmdSN, expStatSN); break;
            case ControlKind.TaskManagement: TaskManagementExchange.Write(this, header, cmdSN, expStatSN); break;
            case ControlKind.Text: TextExchange.Write(this, header, cmdSN, expStatSN); break;
            case ControlKind.Logout: LogoutExchange.Write(this, header, cmdSN, expStatSN); break;
        }
    }
}

/// <summary>The response to a <see cref="ControlRequest"/>: its BHS and data segment.</summary>
internal sealed record ControlResponse(byte[] Header, byte[] Data);
