using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary>The libc calls the event loop needs: epoll, eventfd and non-blocking mode for the verbs/CM descriptors.</summary>
internal static unsafe partial class LibC
{
    public const int EpollCloexec = 0x80000;
    public const int EpollCtlAdd = 1;
    public const int EpollCtlDel = 2;
    public const uint EpollIn = 0x001;
    public const uint EpollErr = 0x008;
    public const uint EpollHup = 0x010;

    public const int EfdCloexec = 0x80000;
    public const int EfdNonblock = 0x800;

    public const int FGetFl = 3;
    public const int FSetFl = 4;
    public const int ONonblock = 0x800;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_ctl(int epollFd, int operation, int fd, EpollEvent* @event);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epollFd, EpollEvent* events, int maxEvents, int timeoutMs);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initialValue, int flags);

    // fcntl is variadic; an int third argument is passed the same way on the Linux x86-64 and arm64 ABIs.
    [LibraryImport("libc", SetLastError = true)]
    public static partial int fcntl(int fd, int command, int argument);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, void* buffer, nuint count);

    /// <summary>Puts a descriptor in non-blocking mode so a read after a spurious wakeup returns EAGAIN.</summary>
    public static void SetNonBlocking(int fd, string owner)
    {
        var flags = fcntl(fd, FGetFl, 0);
        if (flags < 0 || fcntl(fd, FSetFl, flags | ONonblock) < 0)
            throw RdmaException.FromErrno($"fcntl(O_NONBLOCK) on the {owner} descriptor", Marshal.GetLastPInvokeError());
    }
}
