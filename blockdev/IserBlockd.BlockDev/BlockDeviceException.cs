namespace IserBlockd.BlockDev;

/// <summary>An I/O failure with the errno the block device client should see (NBD error codes are errno values).</summary>
public sealed class BlockDeviceException(BlockError error, string message, Exception? innerException = null)
    : Exception(message, innerException)
{
    public BlockError Error { get; } = error;
}

/// <summary>The errno values NBD can carry (NBD protocol, "Error values").</summary>
public enum BlockError
{
    PermissionDenied = 1,   // EPERM
    IoError = 5,            // EIO
    OutOfMemory = 12,       // ENOMEM
    InvalidArgument = 22,   // EINVAL
    NoSpace = 28,           // ENOSPC
    Overflow = 75,          // EOVERFLOW
    NotSupported = 95,      // EOPNOTSUPP
    Shutdown = 108,         // ESHUTDOWN
}
