using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel.IoUring;

/// <summary>
/// The io_uring system calls (glibc has no wrappers: syscall(2) with the generic numbers, the same on x86-64
/// and arm64) and their constants. The libc calls the rings and ublk need (mmap, eventfd, pread/pwrite) are
/// <see cref="LibC"/>'s.
/// </summary>
internal static unsafe class IoUringNative
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

    public static int Setup(uint entries, IoUringParams* parameters) =>
        (int)LibC.syscall(SysIoUringSetup, (nint)entries, (nint)parameters, 0, 0, 0, 0);

    public static int Enter(int fd, uint toSubmit, uint minComplete, uint flags, void* arg, nuint argSize) =>
        (int)LibC.syscall(SysIoUringEnter, fd, (nint)toSubmit, (nint)minComplete, (nint)flags, (nint)arg, (nint)argSize);
}
