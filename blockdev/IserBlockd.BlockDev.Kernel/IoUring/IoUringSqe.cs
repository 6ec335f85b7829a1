using System.Runtime.InteropServices;

namespace IserBlockd.BlockDev.Kernel.IoUring;

/// <summary>
/// struct io_uring_sqe: the 64-byte submission entry. With IORING_SETUP_SQE128 each slot is 128 bytes and
/// the 80 bytes from <see cref="CommandOffset"/> on carry an URING_CMD's command (a 64-byte slot has 16).
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
public struct IoUringSqe
{
    /// <summary>Where sqe->cmd starts (it overlays addr3).</summary>
    public const int CommandOffset = 48;

    [FieldOffset(0)] public IoUringOpcode Opcode;
    [FieldOffset(1)] public byte Flags;
    [FieldOffset(2)] public ushort IoPriority;
    [FieldOffset(4)] public int Fd;
    /// <summary>off / addr2; for URING_CMD its low half is cmd_op.</summary>
    [FieldOffset(8)] public ulong Offset;
    [FieldOffset(8)] public uint CommandOp;
    [FieldOffset(16)] public ulong Address;
    [FieldOffset(24)] public uint Length;
    /// <summary>rw_flags, uring_cmd_flags, ... (per opcode).</summary>
    [FieldOffset(28)] public uint OpFlags;
    [FieldOffset(32)] public ulong UserData;
    [FieldOffset(40)] public ushort BufferIndex;
    [FieldOffset(42)] public ushort Personality;
    [FieldOffset(44)] public int FileIndex;
    [FieldOffset(48)] public ulong Address3;
}

/// <summary>The io_uring operations we use (enum io_uring_op).</summary>
public enum IoUringOpcode : byte
{
    Nop = 0,
    Read = 22,
    Write = 23,
    UringCmd = 46,
}

/// <summary>IORING_SETUP_* flags we use.</summary>
[Flags]
public enum IoUringSetupFlags : uint
{
    None = 0,
    /// <summary>Task work runs when the ring's task enters the kernel rather than interrupting it.</summary>
    CoopTaskRun = 1u << 8,
    /// <summary>128-byte SQEs: URING_CMD commands of up to 80 bytes (ublk's control commands need them).</summary>
    Sqe128 = 1u << 10,
    /// <summary>Only one task submits (a ublk queue's thread).</summary>
    SingleIssuer = 1u << 12,
}
