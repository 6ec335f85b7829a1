using System.Runtime.InteropServices;

namespace IserBlockd.Daemon.Native;

/// <summary>The few libc calls the daemon needs that .NET does not expose.</summary>
internal static unsafe partial class Libc
{
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_BASIC_STATS = 0x7ff;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, StatX* buffer);

    [LibraryImport("libc")]
    public static partial uint geteuid();

    [LibraryImport("libc")]
    public static partial int getpid();

    public const int O_RDONLY = 0;
    public const int O_EXCL = 0x80;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int EBUSY = 16;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [LibraryImport("libc")]
    public static partial int close(int fd);
}

/// <summary>struct statx (include/uapi/linux/stat.h): the same layout on every architecture,
/// unlike struct stat. Only the fields we read are named.</summary>
[StructLayout(LayoutKind.Explicit, Size = 256)]
internal struct StatX
{
    [FieldOffset(0)] public uint Mask;
    [FieldOffset(20)] public uint Uid;
    [FieldOffset(24)] public uint Gid;
    [FieldOffset(28)] public ushort Mode;
    [FieldOffset(40)] public ulong Size;
}
