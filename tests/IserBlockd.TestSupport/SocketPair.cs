using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace IserBlockd.TestSupport;

/// <summary>
/// socketpair(AF_UNIX, SOCK_STREAM): two connected ends with nothing in between, e.g. an in-process client and an
/// NBD server, or the kernel's end and the server's transmission-only entry point.
/// </summary>
public static partial class SocketPair
{
    public static (Socket Left, Socket Right) Create()
    {
        Span<int> fds = stackalloc int[2];
        if (socketpair(1 /* AF_UNIX */, 1 /* SOCK_STREAM */ | 0x80000 /* SOCK_CLOEXEC */, 0, ref fds[0]) != 0)
            throw new SocketException(Marshal.GetLastPInvokeError());
        return (new Socket(new SafeSocketHandle(fds[0], ownsHandle: true)),
                new Socket(new SafeSocketHandle(fds[1], ownsHandle: true)));
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socketpair(int domain, int type, int protocol, ref int sv);
}
