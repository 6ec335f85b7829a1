using System.Runtime.InteropServices;

namespace IserBlockd.BlockDev.Kernel.IoUring;

/// <summary>
/// The io_uring system calls (glibc has no wrappers: syscall(2) with the generic numbers, the same on x86-64
/// and arm64) and the few libc calls the rings and ublk need: mmap, eventfd, pread/pwrite.
/// </summary>
internal static unsafe partial class IoUringNative
{
    public const nint SysIoUringSetup = 425;
    public const nint SysIoUringEnter = 426;

    public const uint EnterGetEvents = 1u << 0;
    public const uint EnterExtArg = 1u << 3;

    public const uint FeatureSingleMmap = 1u << 0;
    public const uint FeatureNoDrop = 1u << 1;
    public const uint FeatureExtArg = 1u << 8;

    public const long OffSqRing = 0;
    public const long OffCqRing = 0x8000000;
    public const long OffSqes = 0x10000000;

    public const int ProtRead = 1;
    public const int ProtWrite = 2;
    public const int MapShared = 1;
    public const int MapPopulate = 0x8000;
    public static readonly nint MapFailed = -1;

    public const int EfdCloexec = 0x80000;

    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int EBUSY = 16;
    public const int ENODEV = 19;
    public const int ETIME = 62;

    /// <summary>syscall(2) with six integer arguments (a variadic function, passed like a fixed one on these ABIs).</summary>
    [LibraryImport("libc", SetLastError = true)]
    private static partial nint syscall(nint number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);

    public static int Setup(uint entries, IoUringParams* parameters) =>
        (int)syscall(SysIoUringSetup, (nint)entries, (nint)parameters, 0, 0, 0, 0);

    public static int Enter(int fd, uint toSubmit, uint minComplete, uint flags, void* arg, nuint argSize) =>
        (int)syscall(SysIoUringEnter, fd, (nint)toSubmit, (nint)minComplete, (nint)flags, (nint)arg, (nint)argSize);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(nint address, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initial, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint pread(int fd, void* buffer, nuint count, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint pwrite(int fd, void* buffer, nuint count, long offset);
}
