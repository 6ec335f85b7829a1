using System.Net.Sockets;

namespace IserBlockd.Primitives.Native;

/// <summary>
/// socketpair(AF_UNIX, SOCK_STREAM): two connected ends with nothing in between — the kernel's NBD client end and
/// our server's, or (in tests) an in-process client and a server.
/// </summary>
public static unsafe class SocketPair
{
    /// <summary>Both ends as sockets. Throws <see cref="SocketException"/> with the errno on failure.</summary>
    public static (Socket Left, Socket Right) Create()
    {
        var (left, right) = CreateDescriptors();
        return (new Socket(new SafeSocketHandle(left, ownsHandle: true)), new Socket(new SafeSocketHandle(right, ownsHandle: true)));
    }

    /// <summary>One end as a bare descriptor (to hand to the kernel), the other as a socket for our server.</summary>
    public static (FileDescriptorHandle KernelEnd, Socket ServerEnd) CreateForKernel()
    {
        var (left, right) = CreateDescriptors();
        var kernelEnd = new FileDescriptorHandle(left);
        try
        {
            return (kernelEnd, new Socket(new SafeSocketHandle(right, ownsHandle: true)));
        }
        catch
        {
            kernelEnd.Dispose();
            LibC.close(right);
            throw;
        }
    }

    private static (int Left, int Right) CreateDescriptors()
    {
        var fds = stackalloc int[2];
        if (LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, fds) != 0)
            throw new SocketException(Errno.Last);
        return (fds[0], fds[1]);
    }
}
