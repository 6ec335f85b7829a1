using IserBlockd.BlockDev.Kernel.Netlink;

namespace IserBlockd.BlockDev.Kernel.Nbd;

/// <summary>Builds the requests of the "nbd" family and parses its replies. Pure functions over bytes,
/// so unit tests check them byte for byte without a kernel.</summary>
internal static class NbdNetlinkMessages
{
    public const string FamilyName = "nbd";                 // NBD_GENL_FAMILY_NAME
    public const byte FamilyVersion = 1;                    // NBD_GENL_VERSION
    public const string MulticastGroupName = "nbd_mc_group"; // NBD_GENL_MCAST_GROUP_NAME

    private const ushort RequestFlags = Netlink.Netlink.FlagRequest | Netlink.Netlink.FlagAck;

    /// <summary>NBD_CMD_CONNECT: the configuration plus one NBD_SOCK_ITEM per socket descriptor.</summary>
    public static byte[] BuildConnect(ushort familyId, uint sequence, NbdDeviceConfiguration configuration, ReadOnlySpan<int> socketFds)
    {
        if (socketFds.IsEmpty) throw new ArgumentException("NBD_CMD_CONNECT needs at least one socket", nameof(socketFds));
        if (configuration.SizeBytes is null) throw new ArgumentException("NBD_CMD_CONNECT needs a size", nameof(configuration));
        return Build(familyId, sequence, NbdNetlinkCommand.Connect, configuration, socketFds);
    }

    /// <summary>NBD_CMD_RECONFIGURE: new sockets replace dead connections of a live device.</summary>
    public static byte[] BuildReconfigure(ushort familyId, uint sequence, NbdDeviceConfiguration configuration, ReadOnlySpan<int> socketFds)
    {
        if (configuration.Index is null) throw new ArgumentException("NBD_CMD_RECONFIGURE needs an index", nameof(configuration));
        return Build(familyId, sequence, NbdNetlinkCommand.Reconfigure, configuration, socketFds);
    }

    public static byte[] BuildDisconnect(ushort familyId, uint sequence, uint index) =>
        new NetlinkMessageBuilder(familyId, RequestFlags, sequence, (byte)NbdNetlinkCommand.Disconnect, FamilyVersion)
            .PutU32(NbdNetlinkAttribute.Index, index)
            .ToArray();

    /// <summary>NBD_CMD_STATUS for one device, or for all when <paramref name="index"/> is null.</summary>
    public static byte[] BuildStatus(ushort familyId, uint sequence, uint? index)
    {
        var builder = new NetlinkMessageBuilder(familyId, RequestFlags, sequence, (byte)NbdNetlinkCommand.Status, FamilyVersion);
        if (index is { } i) builder.PutU32(NbdNetlinkAttribute.Index, i);
        return builder.ToArray();
    }

    /// <summary>The index the kernel chose, from the reply to NBD_CMD_CONNECT.</summary>
    public static uint ParseConnectReply(NetlinkMessage reply)
    {
        if (reply.GenericCommand != (byte)NbdNetlinkCommand.Connect)
            throw new NetlinkException($"expected an NBD_CMD_CONNECT reply, got command {reply.GenericCommand}");
        return reply.GenericAttributes.Find(NbdNetlinkAttribute.Index)?.AsU32()
            ?? throw new NetlinkException("NBD_CMD_CONNECT reply without NBD_ATTR_INDEX");
    }

    /// <summary>The device list of an NBD_CMD_STATUS reply.</summary>
    public static List<NbdDeviceStatus> ParseStatusReply(NetlinkMessage reply)
    {
        if (reply.GenericCommand != (byte)NbdNetlinkCommand.Status)
            throw new NetlinkException($"expected an NBD_CMD_STATUS reply, got command {reply.GenericCommand}");
        var devices = new List<NbdDeviceStatus>();
        var list = reply.GenericAttributes.Find(NbdNetlinkAttribute.DeviceList);
        if (list is null) return devices;
        foreach (var item in list.Value.AsNested().ToList())
        {
            if (item.Type != NbdNetlinkAttribute.DeviceItem) continue;
            var fields = item.AsNested();
            var index = fields.Find(NbdNetlinkAttribute.DeviceIndex)?.AsU32()
                ?? throw new NetlinkException("NBD_DEVICE_ITEM without NBD_DEVICE_INDEX");
            var connected = fields.Find(NbdNetlinkAttribute.DeviceConnected)?.AsU8() ?? 0;
            devices.Add(new NbdDeviceStatus(index, connected != 0));
        }
        return devices;
    }

    /// <summary>Reads an NBD_CMD_LINK_DEAD multicast notification: true with the device's index; false for any other
    /// message, and false with <paramref name="malformed"/> saying what is wrong for one of the nbd family that cannot
    /// be read. Never throws: the monitor keeps listening whatever arrives.</summary>
    public static bool TryParseLinkDead(NetlinkMessage message, ushort familyId, out uint index, out string? malformed)
    {
        index = 0;
        malformed = null;
        if (message.Type != familyId) return false;
        try
        {
            if (message.GenericCommand != (byte)NbdNetlinkCommand.LinkDead) return false;
            if (message.GenericAttributes.Find(NbdNetlinkAttribute.Index) is not { } attribute)
            {
                malformed = "NBD_CMD_LINK_DEAD without NBD_ATTR_INDEX";
                return false;
            }
            index = attribute.AsU32();
            return true;
        }
        catch (NetlinkException e)
        {
            malformed = e.Message;
            return false;
        }
    }

    private static byte[] Build(ushort familyId, uint sequence, NbdNetlinkCommand command, NbdDeviceConfiguration c, ReadOnlySpan<int> socketFds)
    {
        // attribute order follows their numbers, as nbd-client does; the kernel does not care
        var b = new NetlinkMessageBuilder(familyId, RequestFlags, sequence, (byte)command, FamilyVersion);
        if (c.Index is { } index) b.PutU32(NbdNetlinkAttribute.Index, index);
        if (c.SizeBytes is { } size) b.PutU64(NbdNetlinkAttribute.SizeBytes, size);
        if (c.BlockSizeBytes is { } blockSize) b.PutU64(NbdNetlinkAttribute.BlockSizeBytes, blockSize);
        if (c.TimeoutSeconds is { } timeout) b.PutU64(NbdNetlinkAttribute.Timeout, timeout);
        if (c.ServerFlags is { } serverFlags) b.PutU64(NbdNetlinkAttribute.ServerFlags, serverFlags);
        if (c.ClientFlags is { } clientFlags) b.PutU64(NbdNetlinkAttribute.ClientFlags, (ulong)clientFlags);
        if (!socketFds.IsEmpty)
        {
            var sockets = b.BeginNested(NbdNetlinkAttribute.Sockets);
            foreach (var fd in socketFds)
            {
                var item = b.BeginNested(NbdNetlinkAttribute.SocketItem);
                b.PutU32(NbdNetlinkAttribute.SocketFd, checked((uint)fd));
                b.EndNested(item);
            }
            b.EndNested(sockets);
        }
        if (c.DeadConnectionTimeoutSeconds is { } dead) b.PutU64(NbdNetlinkAttribute.DeadConnectionTimeout, dead);
        if (c.BackendIdentifier is { } backend) b.PutString(NbdNetlinkAttribute.BackendIdentifier, backend);
        return b.ToArray();
    }
}
