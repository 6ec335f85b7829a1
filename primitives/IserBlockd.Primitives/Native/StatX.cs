using System.Runtime.InteropServices;

namespace IserBlockd.Primitives.Native;

/// <summary>struct statx (include/uapi/linux/stat.h): the same layout on every architecture,
/// unlike struct stat. Only the fields we read are named.</summary>
[StructLayout(LayoutKind.Explicit, Size = 256)]
public struct StatX
{
    [FieldOffset(0)] public uint Mask;
    [FieldOffset(20)] public uint Uid;
    [FieldOffset(24)] public uint Gid;
    [FieldOffset(28)] public ushort Mode;
    [FieldOffset(40)] public ulong Size;
}
