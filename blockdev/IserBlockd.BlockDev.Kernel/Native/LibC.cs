using System.Runtime.InteropServices;

namespace IserBlockd.BlockDev.Kernel.Native;

/// <summary>The few libc calls kernel attach needs. Control path only: none of these run per I/O.</summary>
internal static unsafe partial class LibC
{
    public const int AF_UNIX = 1;
    public const int AF_NETLINK = 16;
    public const int SOCK_STREAM = 1;
    public const int SOCK_RAW = 3;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int NETLINK_GENERIC = 16;
    public const int SOL_SOCKET = 1;
    public const int SO_RCVTIMEO = 20;
    public const int SOL_NETLINK = 270;
    public const int NETLINK_ADD_MEMBERSHIP = 1;
    public const int NETLINK_CAP_ACK = 10;
    public const int NETLINK_EXT_ACK = 11;
    public const int O_RDWR = 2;
    public const int O_CLOEXEC = 0x80000;

    public const int EINTR = 4;
    public const int EAGAIN = 11;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int socketpair(int domain, int type, int protocol, int* fds);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int bind(int fd, void* address, uint addressLength);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsockname(int fd, void* address, uint* addressLength);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, void* value, uint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint sendto(int fd, void* buffer, nuint length, int flags, void* address, uint addressLength);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint recv(int fd, void* buffer, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    /// <summary>ioctl(2) with one integer argument, which is how every NBD ioctl is called.
    /// (Variadic in C; on the Linux ABIs we run on, a trailing integer is passed like a fixed one.)</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int ioctl(int fd, nuint request, nuint argument);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    /// <summary>struct sockaddr_nl from linux/netlink.h.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SockAddrNetlink
    {
        public ushort Family;
        public ushort Pad;
        public uint PortId;
        public uint Groups;
    }

    /// <summary>struct timeval (64-bit time_t).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct TimeVal
    {
        public long Seconds;
        public long Microseconds;
    }
}
