namespace IserBlockd.BlockDev.Kernel.Netlink;

/// <summary>
/// Request/response over one netlink socket: sends a request with NLM_F_ACK, collects the replies
/// that carry its sequence number until the ACK (or NLMSG_DONE of a dump), and turns an NLMSG_ERROR
/// into a <see cref="NetlinkException"/> naming the operation and the errno.
/// </summary>
internal sealed class GenericNetlinkConnection : IDisposable
{
    private readonly NetlinkSocket _socket;
    private readonly byte[] _receiveBuffer = new byte[64 * 1024];
    private readonly Lock _lock = new();
    private uint _sequence = (uint)Environment.TickCount;

    public GenericNetlinkConnection(TimeSpan? receiveTimeout = null) =>
        _socket = NetlinkSocket.Open(receiveTimeout ?? TimeSpan.FromSeconds(30));

    public uint NextSequence() => Interlocked.Increment(ref _sequence);

    public GenericNetlinkFamily ResolveFamily(string name)
    {
        var sequence = NextSequence();
        try
        {
            var replies = Transact($"resolve generic netlink family '{name}'", GenericNetlinkController.BuildGetFamily(name, sequence), sequence);
            if (replies.Count == 0) throw new NetlinkException($"the controller sent no description of family '{name}'");
            return GenericNetlinkController.ParseFamily(replies[0]);
        }
        catch (NetlinkException e) when (e.Errno == 2)   // ENOENT: no such family registered
        {
            throw new NetlinkFamilyNotFoundException(name, e);
        }
    }

    /// <summary>Sends <paramref name="request"/> (built with <paramref name="sequence"/> and NLM_F_ACK)
    /// and returns the data replies in order.</summary>
    public List<NetlinkMessage> Transact(string operation, byte[] request, uint sequence)
    {
        lock (_lock)
        {
            _socket.Send(request);
            var replies = new List<NetlinkMessage>();
            while (true)
            {
                var length = _socket.Receive(_receiveBuffer);
                // copy: the buffer is reused for the next datagram
                foreach (var message in NetlinkMessage.ParseAll(_receiveBuffer.AsSpan(0, length).ToArray()))
                {
                    if (message.Sequence != sequence) continue;   // a stale answer to an earlier, abandoned request
                    switch (message.Type)
                    {
                        case Netlink.TypeError:
                            var error = NetlinkError.Parse(message);
                            if (error.IsAck) return replies;
                            throw new NetlinkException(operation, error.Errno, error.KernelMessage);
                        case Netlink.TypeDone:
                            return replies;
                        case Netlink.TypeNoop:
                            break;
                        default:
                            replies.Add(message);
                            break;
                    }
                }
            }
        }
    }

    public void Dispose() => _socket.Dispose();
}
