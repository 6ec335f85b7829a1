
namespace IserBlockd.BlockDev.Kernel.Netlink;

/// <summary>A netlink failure: a system call that failed, a kernel NLMSG_ERROR (with its errno and, when
/// the kernel gave one, its extended-ack message), or a reply we could not parse.</summary>
public sealed class NetlinkException : Exception
{
    public NetlinkException(string message) : base(message) { }

    public NetlinkException(string operation, int errno, string? kernelMessage = null)
        : base($"{operation}: {Primitives.Native.Errno.Describe(errno)}{(string.IsNullOrEmpty(kernelMessage) ? "" : " — kernel says: " + kernelMessage)}")
    {
        Errno = errno;
        KernelMessage = kernelMessage;
    }

    /// <summary>The positive errno, or 0 when the failure is not an errno (a malformed reply).</summary>
    public int Errno { get; }

    public string? KernelMessage { get; }
}
