using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace IserBlockd.Primitives.Native;

/// <summary>
/// Every libc call the project makes (its tests included), declared once. All arguments are blittable (pointers,
/// integers) except the paths of <see cref="open"/>, <see cref="statx"/> and <see cref="chown"/>, which only the control
/// path and tests call; errno is read with <see cref="Errno.Last"/>. Constants keep their C names.
/// </summary>
public static unsafe partial class LibC
{
    // socket(2)
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
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;

    // open(2), fcntl(2)
    public const int O_RDONLY = 0;
    public const int O_WRONLY = 1;
    public const int O_RDWR = 2;
    public const int O_EXCL = 0x80;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int F_GETFL = 3;
    public const int F_SETFL = 4;
    public const int F_SETPIPE_SZ = 1031;

    // pipe2(2), splice(2), vmsplice(2); SIOCOUTQ (= TIOCOUTQ) for ioctl(2) on a socket
    public const int SPLICE_F_MOVE = 1;
    public const int SPLICE_F_NONBLOCK = 2;
    public const nuint SIOCOUTQ = 0x5411;
    /// <summary>Bytes waiting to be read (= SIOCINQ on a socket).</summary>
    public const nuint FIONREAD = 0x541B;

    // statx(2)
    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_BASIC_STATS = 0x7ff;

    // epoll(7), eventfd(2)
    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const uint EPOLLIN = 0x001;
    public const uint EPOLLERR = 0x008;
    public const uint EPOLLHUP = 0x010;
    public const int EFD_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800;

    // poll(2)
    public const short POLLIN = 0x001;

    /// <summary><c>struct pollfd</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    // mmap(2)
    public const int PROT_READ = 1;
    public const int PROT_WRITE = 2;
    public const int MAP_SHARED = 1;
    public const int MAP_POPULATE = 0x8000;
    public static readonly nint MAP_FAILED = -1;

    // fallocate(2)
    public const int FALLOC_FL_KEEP_SIZE = 0x01;
    public const int FALLOC_FL_PUNCH_HOLE = 0x02;
    public const int FALLOC_FL_ZERO_RANGE = 0x10;

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
    public static partial nint sendmsg(int fd, MessageHeader* message, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint recv(int fd, void* buffer, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint pread(int fd, void* buffer, nuint count, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint pwrite(int fd, void* buffer, nuint count, long offset);

    /// <summary>ioctl(2) with one integer argument, which is how every NBD ioctl is called.
    /// (Variadic in C; on the Linux ABIs we run on, a trailing integer is passed like a fixed one.)</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int ioctl(int fd, nuint request, nuint argument);

    /// <summary>ioctl(2) whose argument points at an int the kernel fills in (SIOCOUTQ).</summary>
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int ioctl(int fd, nuint request, int* result);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int pipe2(int* fds, int flags);

    /// <summary>vmsplice(2): the pipe takes references to the user pages, not a copy of them.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial nint vmsplice(int pipeFd, IoVector* vectors, nuint count, uint flags);

    /// <summary>splice(2) with no offsets (both ends are pipes or sockets).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial nint splice(int fromFd, long* fromOffset, int toFd, long* toOffset, nuint length, uint flags);

    /// <summary>fcntl(2) with an int third argument (variadic in C, passed the same way on x86-64 and arm64).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int fcntl(int fd, int command, int argument);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fallocate(SafeFileHandle fd, int mode, long offset, long length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, StatX* buffer);

    [LibraryImport("libc")]
    public static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    public static partial int chown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint owner, uint group);

    /// <summary>The calling thread's filesystem user id (Linux); returns the previous one.</summary>
    [LibraryImport("libc")]
    public static partial int setfsuid(uint fsuid);

    /// <summary>The calling thread's filesystem group id (Linux); returns the previous one.</summary>
    [LibraryImport("libc")]
    public static partial int setfsgid(uint fsgid);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int signal);

    [LibraryImport("libc")]
    public static partial int getpid();

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    /// <summary>epoll_ctl(2); <paramref name="event"/> points at a <c>struct epoll_event</c> the caller lays out.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_ctl(int epollFd, int operation, int fd, void* @event);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epollFd, void* events, int maxEvents, int timeoutMs);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initialValue, int flags);

    /// <summary>poll(2); the I/O thread's poll at queue depth one calls it with a timeout of 0.</summary>
    [LibraryImport("libc")]
    public static partial int poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(nint address, nuint length);

    /// <summary>syscall(2) with six integer arguments (variadic in C, passed like a fixed one on these ABIs), for
    /// system calls glibc has no wrapper for (io_uring).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial nint syscall(nint number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);

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

    /// <summary>struct iovec.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoVector
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary>struct msghdr (x86-64/arm64 layout), for a connected socket: no address, no control data.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MessageHeader
    {
        public void* Name;
        public uint NameLength;
        public IoVector* Vectors;
        public nuint VectorCount;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }
}
