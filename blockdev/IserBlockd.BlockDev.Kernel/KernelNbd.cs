using System.Net.Sockets;
using IserBlockd.BlockDev.Kernel.Ioctl;
using IserBlockd.BlockDev.Kernel.Nbd;
using IserBlockd.BlockDev.Kernel.Netlink;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel;

/// <summary>
/// Attaches a block device as a kernel /dev/nbdN. The kernel's NBD client speaks only the transmission
/// phase on the sockets it is given; <c>serveTransmission</c> serves one such socket (the NBD server's
/// transmission-only entry point) until it closes. Needs root (CAP_SYS_ADMIN) and the nbd module.
/// </summary>
public static class KernelNbd
{
    /// <summary>Connects a device: one socketpair per connection, NBD_CMD_CONNECT (or the ioctls),
    /// then serves each connection.</summary>
    public static async Task<KernelNbdDevice> AttachAsync(KernelAttachRequest request,
        Func<Socket, CancellationToken, Task> serveTransmission, CancellationToken cancellationToken = default)
    {
        request.Validate();
        var method = request.Method == KernelAttachMethod.Auto
            ? (NetlinkAvailable() ? KernelAttachMethod.Netlink : KernelAttachMethod.Ioctl)
            : request.Method;
        return method == KernelAttachMethod.Netlink
            ? await Task.Run(() => AttachWithNetlink(request, serveTransmission), cancellationToken).ConfigureAwait(false)
            : await Task.Run(() => IoctlAttachment.Attach(request, serveTransmission), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Takes over a device that is still configured but whose server went away (a daemon restart):
    /// NBD_CMD_RECONFIGURE hands it new sockets for its dead connections, and queued requests resume.
    /// </summary>
    public static Task<KernelNbdDevice> ReattachAsync(uint index, KernelAttachRequest request,
        Func<Socket, CancellationToken, Task> serveTransmission, CancellationToken cancellationToken = default)
    {
        request.Validate();
        return Task.Run(() =>
        {
            using var client = NbdNetlinkClient.Open();
            var status = client.Status(index);
            if (status.Count == 0 || !status[0].Connected)
                throw new KernelNbdException($"/dev/nbd{index} is not configured: nothing to re-attach (attach it instead)");
            var device = new KernelNbdDevice(index, KernelAttachMethod.Netlink, request, serveTransmission, ioctl: null);
            try
            {
                device.HandOverSockets(client, request.Connections, cancellationToken);
                device.StartReplacingDeadConnections();
                return device;
            }
            catch
            {
                device.Abandon();
                throw;
            }
        }, cancellationToken);
    }

    /// <summary>NBD_CMD_STATUS: every nbd device the kernel has, or just <paramref name="index"/>.</summary>
    public static IReadOnlyList<NbdDeviceStatus> Status(uint? index = null)
    {
        using var client = NbdNetlinkClient.Open();
        return client.Status(index);
    }

    /// <summary>Whether the kernel has the "nbd" generic netlink family (module loaded, Linux 4.12+).</summary>
    public static bool NetlinkAvailable()
    {
        try
        {
            using var client = NbdNetlinkClient.Open();
            return true;
        }
        catch (NetlinkFamilyNotFoundException)
        {
            return false;
        }
    }

    private static KernelNbdDevice AttachWithNetlink(KernelAttachRequest request, Func<Socket, CancellationToken, Task> serve)
    {
        using var client = NbdNetlinkClient.Open();
        var pairs = new List<(FileDescriptorHandle KernelEnd, Socket ServerEnd)>();
        try
        {
            for (var i = 0; i < request.Connections; i++) pairs.Add(SocketPair.CreateForKernel());
            var fds = pairs.Select(p => p.KernelEnd.Fd).ToArray();
            uint index;
            try
            {
                index = client.Connect(request.ToConfiguration(request.Index), fds);
            }
            catch (NetlinkException e)
            {
                throw new KernelNbdException(e.Message + ConnectHint(e.Errno, request.Index), e.Errno, e);
            }
            // the kernel holds its own reference to each socket now
            foreach (var p in pairs) p.KernelEnd.Dispose();
            var device = new KernelNbdDevice(index, KernelAttachMethod.Netlink, request, serve, ioctl: null);
            foreach (var p in pairs) device.Serve(p.ServerEnd);
            pairs.Clear();
            device.StartReplacingDeadConnections();
            return device;
        }
        finally
        {
            foreach (var p in pairs)
            {
                p.KernelEnd.Dispose();
                p.ServerEnd.Dispose();
            }
        }
    }

    private static string ConnectHint(int errno, uint? index) => errno switch
    {
        1 => " (needs root / CAP_SYS_ADMIN)",
        16 => $" (/dev/nbd{index} is already in use)",
        22 => " (the kernel log says which attribute it refused: dmesg)",
        _ => "",
    };
}
