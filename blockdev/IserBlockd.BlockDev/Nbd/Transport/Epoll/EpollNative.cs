using System.Runtime.InteropServices;

namespace IserBlockd.BlockDev.Nbd.Transport.Epoll;

/// <summary>The Linux calls the epoll transport makes (epoll(7), recv(2), send(2), shutdown(2)).</summary>
internal static unsafe partial class EpollNative
{
    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const int EPOLL_CTL_MOD = 3;
    public const uint EPOLLIN = 0x001;
    public const uint EPOLLOUT = 0x004;
    public const uint EPOLLERR = 0x008;
    public const uint EPOLLHUP = 0x010;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLET = 1u << 31;

    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;

    public const int SHUT_RD = 0;
    public const int SHUT_RDWR = 2;

    public const int EINTR = 4;
    public const int EAGAIN = 11;

    /// <summary>struct epoll_event is packed (12 bytes) on x86-64 and naturally aligned (16) elsewhere.</summary>
    public static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_ctl(int epfd, int op, int fd, byte* @event);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epfd, byte* events, int maxevents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint send(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int shutdown(int fd, int how);

    /// <summary>Fills an epoll_event in the layout of this architecture.</summary>
    public static void WriteEvent(byte* destination, uint events, ulong data)
    {
        *(uint*)destination = events;
        var dataOffset = EventSize == 12 ? 4 : 8;
        *(ulong*)(destination + dataOffset) = data;
    }

    public static (uint Events, ulong Data) ReadEvent(byte* source)
    {
        var dataOffset = EventSize == 12 ? 4 : 8;
        return (*(uint*)source, *(ulong*)(source + dataOffset));
    }
}
