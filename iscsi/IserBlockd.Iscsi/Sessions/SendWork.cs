using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Iscsi.Sessions;

internal enum SendWorkKind : byte
{
    Command,
    DataOut,
    NopOutReply,
    Control,
}

/// <summary>
/// One unit of writer work. Self-contained (a snapshot of the task's fields), so the writer never depends on a
/// pooled task object that may already have completed.
/// </summary>
internal readonly record struct SendWork
{
    public SendWorkKind Kind { get; init; }
    public uint Itt { get; init; }
    public ulong Lun { get; init; }
    public ulong EncodedLun { get; init; }
    public uint CmdSN { get; init; }
    public uint TargetTransferTag { get; init; }
    public ScsiDataDirection Direction { get; init; }
    public TaskAttribute Attribute { get; init; }
    public Memory<byte> Buffer { get; init; }
    public ReadOnlyMemory<byte> Cdb { get; init; }
    public int Offset { get; init; }
    public int Length { get; init; }
    public byte[]? ControlData { get; init; }
    public ControlRequest? Control { get; init; }

    public static SendWork ForCommand(ScsiTask task) => new()
    {
        Kind = SendWorkKind.Command,
        Itt = task.Itt,
        Lun = task.Lun,
        CmdSN = task.CmdSN,
        Direction = task.Direction,
        Attribute = task.Attribute,
        Buffer = task.Buffer,
        // Not copied: the writer puts the CDB into the header before its first await, while the task cannot complete yet.
        Cdb = task.Cdb.AsMemory(0, task.CdbLength),
    };

    public static SendWork ForR2T(ScsiTask task, uint ttt, int offset, int length) => new()
    {
        Kind = SendWorkKind.DataOut,
        Itt = task.Itt,
        Lun = task.Lun,
        TargetTransferTag = ttt,
        Buffer = task.Buffer,
        Offset = offset,
        Length = length,
    };

    public static SendWork ForNopOutReply(ulong encodedLun, uint ttt, byte[]? data) => new()
    {
        Kind = SendWorkKind.NopOutReply,
        EncodedLun = encodedLun,
        TargetTransferTag = ttt,
        ControlData = data,
    };

    public static SendWork ForControl(ControlRequest request) => new() { Kind = SendWorkKind.Control, Control = request };
}
