using System.Runtime.InteropServices;

namespace IserBlockd.BlockDev.Kernel.Ublk;

/// <summary>struct ublksrv_ctrl_cmd (linux/ublk_cmd.h): a control command, carried in a 128-byte SQE's command area.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UblkControlCommand
{
    public uint DeviceId;
    /// <summary>0xFFFF unless the command is for one queue.</summary>
    public ushort QueueId;
    /// <summary>Length of the buffer at <see cref="Address"/>.</summary>
    public ushort Length;
    public ulong Address;
    public ulong Data0;
    /// <summary>data[1] in Linux 6.1's header; dev_path_len/pad/reserved in later ones (unprivileged devices only).</summary>
    public ulong Data1;
}

/// <summary>struct ublksrv_ctrl_dev_info: ADD_DEV's request and answer, GET_DEV_INFO's answer.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UblkDeviceInfo
{
    public ushort QueueCount;
    public ushort QueueDepth;
    public UblkDeviceState State;
    public ushort Pad0;
    public uint MaxIoBufferBytes;
    public uint DeviceId;
    public int ServerPid;
    public uint Pad1;
    public UblkFeatures Flags;
    /// <summary>For the server's own use: the kernel keeps it and hands it back. We put the backend's tag here.</summary>
    public ulong ServerFlags;
    public uint OwnerUid;
    public uint OwnerGid;
    public ulong Reserved1;
    public ulong Reserved2;
}

/// <summary>struct ublksrv_io_desc: one request, in the queue's shared descriptor array at its tag.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UblkIoDescriptor
{
    /// <summary>Operation in bits 0-7, <see cref="UblkIoFlags"/> above.</summary>
    public uint OpFlags;
    public uint SectorCount;
    public ulong StartSector;
    public ulong Address;

    public readonly UblkIoOp Op => (UblkIoOp)(OpFlags & 0xff);

    public readonly UblkIoFlags Flags => (UblkIoFlags)(OpFlags & ~0xffu);
}

/// <summary>struct ublksrv_io_cmd: FETCH_REQ / COMMIT_AND_FETCH_REQ, in an SQE's command area.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UblkIoCommand
{
    public ushort QueueId;
    public ushort Tag;
    /// <summary>COMMIT: bytes done, or a negative errno.</summary>
    public int Result;
    /// <summary>The server's buffer; must be 0 with <see cref="UblkFeatures.UserCopy"/>.</summary>
    public ulong Address;
}

/// <summary>struct ublk_param_basic.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UblkBasicParams
{
    public UblkAttributes Attributes;
    public byte LogicalBlockShift;
    public byte PhysicalBlockShift;
    public byte IoOptimalShift;
    public byte IoMinimumShift;
    public uint MaxSectors;
    public uint ChunkSectors;
    public ulong DeviceSectors;
    public ulong VirtualBoundaryMask;
}

/// <summary>struct ublk_param_discard (discard and write-zeroes limits).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UblkDiscardParams
{
    public uint DiscardAlignment;
    public uint DiscardGranularity;
    public uint MaxDiscardSectors;
    public uint MaxWriteZeroesSectors;
    public ushort MaxDiscardSegments;
    public ushort Reserved0;
}

/// <summary>struct ublk_params as far as Linux 6.1's header has it (basic + discard); <see cref="Length"/> tells the
/// kernel how much of its own (longer) struct we send.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UblkParams
{
    public uint Length;
    public UblkParamTypes Types;
    public UblkBasicParams Basic;
    public UblkDiscardParams Discard;
}
