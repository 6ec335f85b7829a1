using System.Net.Sockets;

namespace IserBlockd.BlockDev.Kernel.Native;

/// <summary>socketpair(AF_UNIX, SOCK_STREAM): one end for the kernel's NBD client, one for our server.</summary>
internal static unsafe class SocketPair
{
    public static (FileDescriptorHandle KernelEnd, Socket ServerEnd) Create()
    {
        var fds = stackalloc int[2];
        if (LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, fds) != 0)
        {
            var errno = Errno.Last;
            throw new KernelNbdException($"socketpair(AF_UNIX, SOCK_STREAM): {Errno.Describe(errno)}", errno);
        }
        var kernelEnd = new FileDescriptorHandle(fds[0]);
        try
        {
            return (kernelEnd, new Socket(new SafeSocketHandle(fds[1], ownsHandle: true)));
        }
        catch
        {
            kernelEnd.Dispose();
            LibC.close(fds[1]);
            throw;
        }
    }
}
