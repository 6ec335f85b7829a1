using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel.Netlink;

/// <summary>
/// A bound AF_NETLINK socket (NETLINK_GENERIC). Blocking calls with a receive timeout: this is the
/// control path (attach, detach, status), never the I/O path.
/// </summary>
internal sealed unsafe class NetlinkSocket : IDisposable
{
    private readonly FileDescriptorHandle _handle;

    private NetlinkSocket(FileDescriptorHandle handle, uint portId)
    {
        _handle = handle;
        PortId = portId;
    }

    /// <summary>The port id the kernel assigned at bind (nlmsg_pid of replies addressed to us).</summary>
    public uint PortId { get; }

    public static NetlinkSocket Open(TimeSpan receiveTimeout)
    {
        var fd = LibC.socket(LibC.AF_NETLINK, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC, LibC.NETLINK_GENERIC);
        if (fd < 0) throw new NetlinkException("socket(AF_NETLINK, NETLINK_GENERIC)", Errno.Last);
        var handle = new FileDescriptorHandle(fd);
        try
        {
            // errors echo only the header of our request, and carry the kernel's message when it has one
            SetOption(fd, LibC.SOL_NETLINK, LibC.NETLINK_CAP_ACK, 1, required: false);
            SetOption(fd, LibC.SOL_NETLINK, LibC.NETLINK_EXT_ACK, 1, required: false);
            var tv = new LibC.TimeVal
            {
                Seconds = (long)receiveTimeout.TotalSeconds,
                Microseconds = receiveTimeout.Microseconds + receiveTimeout.Milliseconds * 1000L,
            };
            if (LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_RCVTIMEO, &tv, (uint)sizeof(LibC.TimeVal)) != 0)
                throw new NetlinkException("setsockopt(SO_RCVTIMEO)", Errno.Last);

            var address = new LibC.SockAddrNetlink { Family = LibC.AF_NETLINK };
            if (LibC.bind(fd, &address, (uint)sizeof(LibC.SockAddrNetlink)) != 0)
                throw new NetlinkException("bind(AF_NETLINK)", Errno.Last);
            var length = (uint)sizeof(LibC.SockAddrNetlink);
            if (LibC.getsockname(fd, &address, &length) != 0)
                throw new NetlinkException("getsockname(AF_NETLINK)", Errno.Last);
            return new NetlinkSocket(handle, address.PortId);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public void JoinMulticastGroup(uint group)
    {
        using var fd = Use();
        SetOption(fd.Fd, LibC.SOL_NETLINK, LibC.NETLINK_ADD_MEMBERSHIP, (int)group, required: true);
    }

    public void Send(ReadOnlySpan<byte> message)
    {
        using var fd = Use();
        var kernel = new LibC.SockAddrNetlink { Family = LibC.AF_NETLINK };   // port 0 = the kernel
        fixed (byte* p = message)
        {
            while (true)
            {
                var sent = LibC.sendto(fd.Fd, p, (nuint)message.Length, 0, &kernel, (uint)sizeof(LibC.SockAddrNetlink));
                if (sent == message.Length) return;
                if (sent >= 0) throw new NetlinkException($"netlink sendto sent {sent} of {message.Length} bytes");
                var errno = Errno.Last;
                if (errno != Errno.EINTR) throw new NetlinkException("netlink sendto", errno);
            }
        }
    }

    /// <summary>Receives one datagram; throws a timeout <see cref="NetlinkException"/> (EAGAIN) if the
    /// kernel does not answer within the receive timeout.</summary>
    public int Receive(Span<byte> buffer)
    {
        using var fd = Use();
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var received = LibC.recv(fd.Fd, p, (nuint)buffer.Length, 0);
                if (received >= 0) return (int)received;
                var errno = Errno.Last;
                if (errno == Errno.EAGAIN) throw new NetlinkException("no answer from the kernel on the netlink socket", errno);
                if (errno != Errno.EINTR) throw new NetlinkException("netlink recv", errno);
            }
        }
    }

    public void Dispose() => _handle.Dispose();

    private static void SetOption(int fd, int level, int name, int value, bool required)
    {
        if (LibC.setsockopt(fd, level, name, &value, sizeof(int)) != 0 && required)
            throw new NetlinkException($"setsockopt({level}, {name})", Errno.Last);
    }

    private DescriptorLease Use() => new(_handle);
}
