using System.Net;
using System.Buffers;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;
using IserBlockd.Transport.Iser;

namespace IserBlockd.RdmaProbe;

/// <summary>
/// What the iSER initiator relies on where it does not use memory windows (a device without type 2 windows, or
/// <see cref="IserDeviceOptions.MemoryWindows"/> off): each session has a protection domain and registered pools of its
/// own (<see cref="IserDeviceRegistry.OpenForSession"/>), so the keys its registrations carry open only its own buffers.
/// Two sessions' resources are opened the way the transport opens them, with a connection each on its own domain; the
/// peer side reads as a target would. Checked: A's peer reads A's pool buffer with A's key; B's peer with A's key and
/// address fails (the key is not in B's protection domain). The failing read ends its peer's queue pair.
/// </summary>
internal static class SessionScope
{
    private const int Size = 4096;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public static async Task<int> RunAsync(ProbeOptions options)
    {
        using var channel = RdmaEventChannel.Create();
        using var listener = channel.CreateId();
        listener.Bind(new IPEndPoint(options.Address, options.Port));
        listener.Listen();
        var registry = new IserDeviceRegistry(new IserDeviceOptions { MemoryWindows = false });
        var pairs = new List<(RdmaCmId Ours, QueuePair Qp, RdmaCmId Theirs, RdmaEndpoint Peer)>();
        var sessions = new List<IserDevice>();
        CompletionQueue? cq = null;
        IMemoryOwner<byte>? rented = null;
        try
        {
            for (var i = 0; i < 2; i++)
            {
                var ours = channel.CreateId();
                await ours.ResolveAddressAsync(new IPEndPoint(options.Address, options.Port), null, TimeSpan.FromSeconds(5));
                await ours.ResolveRouteAsync(TimeSpan.FromSeconds(5));
                var session = registry.OpenForSession(ours.Device!.DeviceName, out var owned);
                sessions.Add(session);
                if (!owned || session.UsesWindows) throw new InvalidOperationException("without memory windows a session must get resources of its own");
                cq ??= CompletionQueue.Create(ours.Device, 16);
                var qp = ours.CreateQueuePair(session.ProtectionDomain!, cq, cq, new QueuePairCapacity(4, 1));
                var connect = ours.ConnectAsync(new ConnectionParameters(), IserCmHeader.Initiator.ToArray());
                var request = await listener.AcceptRequestAsync().WaitAsync(Timeout);
                var theirs = request.ConnectionRequest!;
                var peer = RdmaEndpoint.Create(theirs, Size);
                await theirs.AcceptAsync(new ConnectionParameters(), ReadOnlyMemory<byte>.Empty).WaitAsync(Timeout);
                await connect.WaitAsync(Timeout);
                pairs.Add((ours, qp, theirs, peer));
            }
            var (a, b) = (pairs[0], pairs[1]);
            if (ReferenceEquals(sessions[0].ProtectionDomain, sessions[1].ProtectionDomain)) throw new InvalidOperationException("two sessions share a protection domain");

            rented = await sessions[0].DataBuffers.RentAsync(Size);
            var buffer = rented.Memory;
            for (var i = 0; i < Size; i++) buffer.Span[i] = (byte)(i * 5 + 1);
            if (!RegisteredBuffer.TryGetSegment(buffer, out var segment)) throw new InvalidOperationException("a pool buffer has no segment");
            Console.WriteLine($"session A's buffer: address 0x{segment.Address:x}, rkey 0x{segment.RemoteKey:x8}");

            var own = await ReadAsync(a.Peer, segment.Address, segment.RemoteKey);
            if (own != null) throw new InvalidOperationException($"A's peer could not read A's buffer with A's key: {own}");
            if (!a.Peer.DataA.Memory.Span[..Size].SequenceEqual(buffer.Span)) throw new InvalidOperationException("A's peer read other bytes than the buffer holds");
            Console.WriteLine("ok: A's peer reads A's buffer with A's key");

            var other = await ReadAsync(b.Peer, segment.Address, segment.RemoteKey);
            Console.WriteLine($"B's peer with A's key: {other ?? "read succeeded"}");
            if (other == null)
            {
                Console.WriteLine("FAIL: another session's peer reached A's buffer with A's key");
                return 1;
            }
            Console.WriteLine($"RESULT sessions own_read=ok other_session={other} distinct_domains=True");
            return 0;
        }
        finally
        {
            foreach (var p in pairs)
            {
                p.Peer.Dispose();
                p.Qp.Dispose();
            }
            rented?.Dispose();
            foreach (var session in sessions) session.Dispose();
            cq?.Dispose();
            registry.Dispose();
            foreach (var p in pairs)
            {
                p.Theirs.Dispose();
                p.Ours.Dispose();
            }
        }
    }

    /// <summary>RDMA READ by a peer; null when it succeeded, else the completion status it failed with.</summary>
    private static async Task<string?> ReadAsync(RdmaEndpoint peer, ulong address, uint key)
    {
        try
        {
            await peer.RdmaAsync(IbvWrOpcode.RdmaRead, peer.DataA.Memory[..Size], address, key);
            return null;
        }
        catch (WorkCompletionException e)
        {
            return e.Status.ToString();
        }
    }

}
