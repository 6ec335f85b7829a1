using IserBlockd.BlockDev.Kernel.Netlink;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel.Nbd;

/// <summary>
/// Listens to the "nbd_mc_group" multicast group for NBD_CMD_LINK_DEAD: the kernel sends it when a
/// connection of a device dies other than by a requested disconnect (the server closed it, or a request
/// timed out and the kernel shut the socket down). That is the signal to hand the device a new socket
/// with NBD_CMD_RECONFIGURE; after a user's DISCONNECT no notification comes, so nothing is revived.
/// </summary>
public sealed class NbdLinkDeadMonitor : IDisposable
{
    private readonly NetlinkSocket _socket;
    private readonly ushort _familyId;
    private readonly Action<uint> _onLinkDead;
    private readonly Thread _thread;
    private volatile bool _stopping;

    private NbdLinkDeadMonitor(NetlinkSocket socket, ushort familyId, Action<uint> onLinkDead)
    {
        _socket = socket;
        _familyId = familyId;
        _onLinkDead = onLinkDead;
        _thread = new Thread(Run) { IsBackground = true, Name = "nbd-link-dead" };
    }

    /// <summary>Starts listening; <paramref name="onLinkDead"/> gets the device index, on the monitor's own
    /// thread (hand longer work elsewhere).</summary>
    public static NbdLinkDeadMonitor Start(Action<uint> onLinkDead)
    {
        GenericNetlinkFamily family;
        using (var client = NbdNetlinkClient.Open()) family = client.Family;
        if (!family.MulticastGroups.TryGetValue(NbdNetlinkMessages.MulticastGroupName, out var group))
            throw new NetlinkException($"the nbd family has no '{NbdNetlinkMessages.MulticastGroupName}' multicast group");
        // a short receive timeout so Dispose is noticed promptly
        var socket = NetlinkSocket.Open(TimeSpan.FromMilliseconds(500));
        try
        {
            socket.JoinMulticastGroup(group);
            var monitor = new NbdLinkDeadMonitor(socket, family.Id, onLinkDead);
            monitor._thread.Start();
            return monitor;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _stopping = true;
        if (Thread.CurrentThread != _thread) _thread.Join(TimeSpan.FromSeconds(2));
        _socket.Dispose();
    }

    private void Run()
    {
        var buffer = new byte[8192];
        while (!_stopping)
        {
            int length;
            try { length = _socket.Receive(buffer); }
            catch (NetlinkException e) when (e.Errno == Errno.EAGAIN) { continue; }   // receive timeout
            catch (Exception) when (_stopping) { return; }
            catch (NetlinkException)
            {
                // ENOBUFS (notifications dropped) and the like: keep listening
                continue;
            }
            List<NetlinkMessage> messages;
            try { messages = NetlinkMessage.ParseAll(buffer.AsSpan(0, length).ToArray()); }
            catch (NetlinkException) { continue; }
            foreach (var message in messages)
                if (NbdNetlinkMessages.TryParseLinkDead(message, _familyId, out var index, out _)) // a malformed one is not ours to act on
                    _onLinkDead(index);
        }
    }
}
