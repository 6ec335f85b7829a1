using System.Runtime.InteropServices;

namespace IserBlockd.BlockDev.Kernel.IoUring;

/// <summary>struct io_sqring_offsets (linux/io_uring.h): where the submission ring's fields live in its mapping.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoSqRingOffsets
{
    public uint Head;
    public uint Tail;
    public uint RingMask;
    public uint RingEntries;
    public uint Flags;
    public uint Dropped;
    public uint Array;
    public uint Reserved1;
    public ulong Reserved2;
}

/// <summary>struct io_cqring_offsets (linux/io_uring.h): where the completion ring's fields live in its mapping.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoCqRingOffsets
{
    public uint Head;
    public uint Tail;
    public uint RingMask;
    public uint RingEntries;
    public uint Overflow;
    public uint Cqes;
    public uint Flags;
    public uint Reserved1;
    public ulong Reserved2;
}

/// <summary>struct io_uring_params: what io_uring_setup is asked for, and what it answers (sizes, features, offsets).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoUringParams
{
    public uint SqEntries;
    public uint CqEntries;
    public uint Flags;
    public uint SqThreadCpu;
    public uint SqThreadIdle;
    public uint Features;
    public uint WqFd;
    public fixed uint Reserved[3];
    public IoSqRingOffsets SqOff;
    public IoCqRingOffsets CqOff;
}

/// <summary>struct io_uring_cqe (16 bytes; rings are set up without CQE32).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct IoUringCqe
{
    public ulong UserData;
    public int Res;
    public uint Flags;
}

/// <summary>struct io_uring_getevents_arg: a wait with a timeout (IORING_ENTER_EXT_ARG).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoUringGetEventsArg
{
    public ulong SigMask;
    public uint SigMaskSize;
    public uint Pad;
    public ulong Timespec;
}

/// <summary>struct __kernel_timespec.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct KernelTimespec
{
    public long Seconds;
    public long Nanoseconds;
}
