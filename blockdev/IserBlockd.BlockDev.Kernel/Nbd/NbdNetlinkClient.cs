using IserBlockd.BlockDev.Kernel.Netlink;

namespace IserBlockd.BlockDev.Kernel.Nbd;

/// <summary>
/// The kernel's NBD generic netlink interface (Linux 4.12+): connect a device to sockets, hand new
/// sockets to a live device, disconnect, list devices. Needs CAP_SYS_ADMIN for all but STATUS.
/// The socket descriptors passed in must stay open until the call returns: the kernel looks them up
/// in this process's descriptor table while it handles the request, then holds its own reference.
/// </summary>
public sealed class NbdNetlinkClient : IDisposable
{
    private readonly GenericNetlinkConnection _connection;

    private NbdNetlinkClient(GenericNetlinkConnection connection, GenericNetlinkFamily family)
    {
        _connection = connection;
        Family = family;
    }

    public GenericNetlinkFamily Family { get; }

    /// <summary>Opens a netlink socket and resolves the "nbd" family.</summary>
    /// <exception cref="NetlinkFamilyNotFoundException">The nbd module is not loaded (or too old for netlink).</exception>
    public static NbdNetlinkClient Open()
    {
        var connection = new GenericNetlinkConnection();
        try
        {
            return new NbdNetlinkClient(connection, connection.ResolveFamily(NbdNetlinkMessages.FamilyName));
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>NBD_CMD_CONNECT; returns the index the kernel used (the requested one, or the first free).</summary>
    public uint Connect(NbdDeviceConfiguration configuration, ReadOnlySpan<int> socketFds)
    {
        var sequence = _connection.NextSequence();
        var what = configuration.Index is { } i ? $"NBD_CMD_CONNECT /dev/nbd{i}" : "NBD_CMD_CONNECT (first free device)";
        var replies = _connection.Transact(what, NbdNetlinkMessages.BuildConnect(Family.Id, sequence, configuration, socketFds), sequence);
        if (replies.Count == 0) throw new NetlinkException($"{what}: the kernel acknowledged but sent no index");
        return NbdNetlinkMessages.ParseConnectReply(replies[0]);
    }

    /// <summary>NBD_CMD_RECONFIGURE: the sockets replace connections the kernel marked dead (extra ones are
    /// ignored by the kernel); other set attributes update the live device.</summary>
    public void Reconfigure(NbdDeviceConfiguration configuration, ReadOnlySpan<int> socketFds)
    {
        var sequence = _connection.NextSequence();
        _connection.Transact($"NBD_CMD_RECONFIGURE /dev/nbd{configuration.Index}",
            NbdNetlinkMessages.BuildReconfigure(Family.Id, sequence, configuration, socketFds), sequence);
    }

    /// <summary>NBD_CMD_DISCONNECT: the kernel sends NBD_CMD_DISC on every connection, shuts them down and
    /// fails what is still queued.</summary>
    public void Disconnect(uint index)
    {
        var sequence = _connection.NextSequence();
        _connection.Transact($"NBD_CMD_DISCONNECT /dev/nbd{index}", NbdNetlinkMessages.BuildDisconnect(Family.Id, sequence, index), sequence);
    }

    /// <summary>NBD_CMD_STATUS for one device (an empty list if it does not exist) or all.</summary>
    public IReadOnlyList<NbdDeviceStatus> Status(uint? index = null)
    {
        var sequence = _connection.NextSequence();
        var replies = _connection.Transact("NBD_CMD_STATUS", NbdNetlinkMessages.BuildStatus(Family.Id, sequence, index), sequence);
        var all = new List<NbdDeviceStatus>();
        foreach (var reply in replies) all.AddRange(NbdNetlinkMessages.ParseStatusReply(reply));
        return all;
    }

    public void Dispose() => _connection.Dispose();
}
