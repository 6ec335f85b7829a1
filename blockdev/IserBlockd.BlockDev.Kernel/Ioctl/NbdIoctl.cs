using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel.Ioctl;

/// <summary>
/// The legacy NBD ioctls (linux/nbd.h), for kernels or containers where the "nbd" netlink family is
/// missing. Each is _IO(0xab, n): no direction, no size, so the number is (0xab &lt;&lt; 8) | n.
/// </summary>
internal static class NbdIoctl
{
    public const uint Type = 0xab;

    public static readonly nuint SetSocket = Io(Type, 0);      // NBD_SET_SOCK
    public static readonly nuint SetBlockSize = Io(Type, 1);   // NBD_SET_BLKSIZE
    public static readonly nuint SetSize = Io(Type, 2);        // NBD_SET_SIZE (bytes; unused: SIZE_BLOCKS is exact)
    public static readonly nuint DoIt = Io(Type, 3);           // NBD_DO_IT: serves until disconnect (blocks)
    public static readonly nuint ClearSocket = Io(Type, 4);    // NBD_CLEAR_SOCK
    public static readonly nuint ClearQueue = Io(Type, 5);     // NBD_CLEAR_QUE
    public static readonly nuint SetSizeBlocks = Io(Type, 7);  // NBD_SET_SIZE_BLOCKS
    public static readonly nuint Disconnect = Io(Type, 8);     // NBD_DISCONNECT
    public static readonly nuint SetTimeout = Io(Type, 9);     // NBD_SET_TIMEOUT (seconds)
    public static readonly nuint SetFlags = Io(Type, 10);      // NBD_SET_FLAGS (transmission flags)

    /// <summary>_IOC(_IOC_NONE, type, nr, 0) from asm-generic/ioctl.h: dir in bits 30-31, size 16-29,
    /// type 8-15, nr 0-7.</summary>
    public static nuint Io(uint type, uint number) => (nuint)((0u << 30) | (0u << 16) | (type << 8) | number);

    public static void Call(FileDescriptorHandle device, nuint request, ulong argument, string what)
    {
        using var fd = new DescriptorLease(device);
        while (LibC.ioctl(fd.Fd, request, (nuint)argument) != 0)
        {
            var errno = Errno.Last;
            if (errno != Errno.EINTR) throw new KernelNbdException($"ioctl {what}: {Errno.Describe(errno)}", errno);
        }
    }
}
