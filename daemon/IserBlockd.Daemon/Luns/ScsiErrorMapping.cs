using IserBlockd.BlockDev;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Daemon.Luns;

/// <summary>Turns what the iSCSI side throws into the errno an NBD client (or the kernel) should see.</summary>
public static class ScsiErrorMapping
{
    public static BlockDeviceException ToBlockDeviceException(Exception e, string operation) => e switch
    {
        BlockDeviceException b => b,
        ScsiCommandException s => new BlockDeviceException(FromErrno(s.Errno), $"{operation}: {s.Message}", s),
        IscsiConnectionLostException => new BlockDeviceException(BlockError.IoError,
            $"{operation}: the target has been unreachable for longer than the replacement timeout ({e.Message})", e),
        IscsiSessionClosedException => new BlockDeviceException(BlockError.Shutdown, $"{operation}: the session is closed ({e.Message})", e),
        NotSupportedException => new BlockDeviceException(BlockError.NotSupported, $"{operation}: {e.Message}", e),
        ArgumentException => new BlockDeviceException(BlockError.InvalidArgument, $"{operation}: {e.Message}", e),
        _ => new BlockDeviceException(BlockError.IoError, $"{operation}: {e.Message}", e),
    };

    /// <summary>NBD carries only a few errno values; the rest become EIO.</summary>
    public static BlockError FromErrno(int errno) => errno switch
    {
        Errno.EPERM => BlockError.PermissionDenied,
        Errno.EINVAL => BlockError.InvalidArgument,
        Errno.ENOSPC => BlockError.NoSpace,
        Errno.EOPNOTSUPP => BlockError.NotSupported,
        _ => BlockError.IoError,
    };
}
