using IserBlockd.Primitives.Native;
using Microsoft.Win32.SafeHandles;

namespace IserBlockd.BlockDev.Devices;

/// <summary>fallocate(2), for punching holes (trim) and zeroing ranges without writing them.</summary>
internal static class FileSpace
{
    /// <summary>Deallocates the range (reads back as zeroes). False if the file system cannot.</summary>
    public static bool TryPunchHole(SafeFileHandle file, long offset, long length) =>
        TryFallocate(file, LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset, length);

    /// <summary>Zeroes the range keeping it allocated. False if the file system cannot.</summary>
    public static bool TryZeroRange(SafeFileHandle file, long offset, long length) =>
        TryFallocate(file, LibC.FALLOC_FL_ZERO_RANGE | LibC.FALLOC_FL_KEEP_SIZE, offset, length);

    private static bool TryFallocate(SafeFileHandle file, int mode, long offset, long length)
    {
        while (true)
        {
            if (LibC.fallocate(file, mode, offset, length) == 0) return true;
            var errno = Errno.Last;
            if (errno == Errno.EINTR) continue;
            if (errno == Errno.EOPNOTSUPP) return false;
            throw new BlockDeviceException(errno == Errno.ENOSPC ? BlockError.NoSpace : BlockError.IoError,
                $"fallocate(mode 0x{mode:x}) at {offset}+{length} failed: {Errno.Describe(errno)}");
        }
    }
}
