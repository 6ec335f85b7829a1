using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace IserBlockd.BlockDev.Devices;

/// <summary>fallocate(2), for punching holes (trim) and zeroing ranges without writing them.</summary>
internal static partial class FileSpace
{
    private const int FallocFlKeepSize = 0x01;
    private const int FallocFlPunchHole = 0x02;
    private const int FallocFlZeroRange = 0x10;
    private const int EOPNOTSUPP = 95;
    private const int EINTR = 4;

    /// <summary>Deallocates the range (reads back as zeroes). False if the file system cannot.</summary>
    public static bool TryPunchHole(SafeFileHandle file, long offset, long length) =>
        TryFallocate(file, FallocFlPunchHole | FallocFlKeepSize, offset, length);

    /// <summary>Zeroes the range keeping it allocated. False if the file system cannot.</summary>
    public static bool TryZeroRange(SafeFileHandle file, long offset, long length) =>
        TryFallocate(file, FallocFlZeroRange | FallocFlKeepSize, offset, length);

    private static bool TryFallocate(SafeFileHandle file, int mode, long offset, long length)
    {
        while (true)
        {
            if (fallocate(file, mode, offset, length) == 0) return true;
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EINTR) continue;
            if (errno == EOPNOTSUPP) return false;
            throw new BlockDeviceException(errno == 28 ? BlockError.NoSpace : BlockError.IoError,
                $"fallocate(mode 0x{mode:x}) at {offset}+{length} failed: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fallocate(SafeFileHandle fd, int mode, long offset, long len);
}
