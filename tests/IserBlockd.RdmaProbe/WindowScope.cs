using System.Net;
using System.Runtime.InteropServices;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;
using IserBlockd.Transport.Iser;

namespace IserBlockd.RdmaProbe;

/// <summary>
/// What the iSER initiator relies on when it scopes remote access with type 2 memory windows, shown on the device in
/// one process. The initiator side has one protection domain with a buffer registered for window binding only and two
/// connections (as two sessions on one device); the peer side reads as a target would. Checked: a window bound on
/// connection A lets A's peer read the buffer; the same key used by B's peer (another session) fails; the
/// registration's own rkey fails; after a local invalidate, A's peer fails with the key that worked before; windows on
/// A and B never carry the same key. Each failing read ends its peer's queue pair, so each gets a connection of its own.
/// </summary>
internal static class WindowScope
{
    private const int Size = 4096;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public static async Task<int> RunAsync(ProbeOptions options)
    {
        using var channel = RdmaEventChannel.Create();
        using var listener = channel.CreateId();
        listener.Bind(new IPEndPoint(options.Address, options.Port));
        listener.Listen();
        var pairs = new List<(RdmaCmId Ours, QueuePair Qp, RdmaCmId Theirs, RdmaEndpoint Peer)>();
        ProtectionDomain? pd = null;
        CompletionQueue? cq = null;
        CompletionDispatcher? dispatcher = null;
        MemoryRegion? region = null;
        var windows = new List<MemoryWindow>();
        var table = new WorkRequestTable(8);
        var done = new AsyncWorkCompletion().Register(table);
        var buffer = (IntPtr)0;
        try
        {
            // Four connections of the initiator side on one protection domain: A (bind, read, invalidate, read again),
            // B (another session: A's key), C (the registration's own key), D (a window of its own, for the key comparison).
            for (var i = 0; i < 4; i++)
            {
                var ours = channel.CreateId();
                await ours.ResolveAddressAsync(new IPEndPoint(options.Address, options.Port), null, TimeSpan.FromSeconds(5));
                await ours.ResolveRouteAsync(TimeSpan.FromSeconds(5));
                if (pd == null)
                {
                    var limits = ours.Device!.QueryLimits();
                    Console.WriteLine($"device {ours.Device}: max_mw {limits.MaxMemoryWindows}, capabilities {limits.Capabilities}");
                    if (!limits.SupportsType2Windows) throw new InvalidOperationException($"{ours.Device} has no type 2 memory windows");
                    pd = ProtectionDomain.Allocate(ours.Device);
                    cq = CompletionQueue.Create(ours.Device, 32);
                    dispatcher = new CompletionDispatcher(cq, table);
                    dispatcher.Start(channel.Loop);
                    buffer = AllocateBuffer();
                    region = pd.RegisterMemory(buffer, Size, ProtectionDomainRegistrar.WindowAccess);
                }
                var qp = ours.CreateQueuePair(pd, cq!, cq!, new QueuePairCapacity(8, 1));
                var connect = ours.ConnectAsync(new ConnectionParameters(), IserCmHeader.InitiatorWithWindows.ToArray());
                var request = await listener.AcceptRequestAsync().WaitAsync(Timeout);
                var theirs = request.ConnectionRequest!;
                var peer = RdmaEndpoint.Create(theirs, Size);
                await theirs.AcceptAsync(new ConnectionParameters(), ReadOnlyMemory<byte>.Empty).WaitAsync(Timeout);
                await connect.WaitAsync(Timeout);
                pairs.Add((ours, qp, theirs, peer));
            }
            var (a, b, c, d) = (pairs[0], pairs[1], pairs[2], pairs[3]);
            var expected = Snapshot(buffer);

            var window = MemoryWindow.Allocate(pd!);
            windows.Add(window);
            var key = await PostAndWaitAsync(done, a.Qp, Bind(window, region!, buffer, IbvAccessFlags.RemoteRead | IbvAccessFlags.RemoteWrite), "bind on A");
            var other = MemoryWindow.Allocate(pd!);
            windows.Add(other);
            var otherKey = await PostAndWaitAsync(done, d.Qp, Bind(other, region!, buffer, IbvAccessFlags.RemoteRead), "bind on D");
            Console.WriteLine($"window on A: key 0x{key:x8}; window on D: key 0x{otherKey:x8}; registration rkey 0x{region!.RemoteKey:x8}");
            if (key == otherKey) throw new InvalidOperationException("two connections' windows carry the same key");

            var bound = await ReadAsync(a.Peer, (ulong)buffer, key);
            if (bound != null) throw new InvalidOperationException($"A's peer could not read through A's window: {bound}");
            if (!a.Peer.DataA.Memory.Span[..Size].SequenceEqual(expected)) throw new InvalidOperationException("A's peer read other bytes than the buffer holds");
            Console.WriteLine("ok: A's peer reads the buffer through the window bound on A");

            var otherSession = await ReadAsync(b.Peer, (ulong)buffer, key);
            Console.WriteLine($"B's peer with A's key: {otherSession ?? "read succeeded"}");
            var registrationKey = await ReadAsync(c.Peer, (ulong)buffer, region.RemoteKey);
            Console.WriteLine($"C's peer with the registration's rkey: {registrationKey ?? "read succeeded"}");

            await PostAndWaitAsync(done, a.Qp, Invalidate(window), "local invalidate on A");
            var stale = await ReadAsync(a.Peer, (ulong)buffer, key);
            Console.WriteLine($"A's peer with A's key after the invalidate: {stale ?? "read succeeded"}");

            // The invalidated window bound again (on D this time) gets a new key that works; D's own window is ended too.
            await PostAndWaitAsync(done, d.Qp, Invalidate(other), "local invalidate on D");
            var again = await PostAndWaitAsync(done, d.Qp, Bind(window, region, buffer, IbvAccessFlags.RemoteRead), "second bind of A's window, on D");
            var rebound = await ReadAsync(d.Peer, (ulong)buffer, again);
            Console.WriteLine($"the window bound again: key 0x{again:x8}, D's peer reads: {rebound ?? "ok"}");
            await PostAndWaitAsync(done, d.Qp, Invalidate(window), "local invalidate on D");
            if (rebound != null || again == key) throw new InvalidOperationException("a window bound a second time does not work with its new key");

            if (otherSession == null || registrationKey == null || stale == null)
            {
                Console.WriteLine("FAIL: a key reached the buffer beyond its window's connection or lifetime");
                return 1;
            }
            Console.WriteLine($"RESULT windows bound_read=ok rebound_read=ok other_session={otherSession} registration_key={registrationKey} after_invalidate={stale} distinct_keys=True");
            return 0;
        }
        finally
        {
            foreach (var p in pairs)
            {
                p.Peer.Dispose();
                p.Qp.Dispose();
            }
            foreach (var w in windows) w.Dispose();
            dispatcher?.Dispose();
            cq?.Dispose();
            region?.Dispose();
            pd?.Dispose();
            foreach (var p in pairs)
            {
                p.Theirs.Dispose();
                p.Ours.Dispose();
            }
            FreeBuffer(buffer);
        }
    }

    /// <summary>Posts one signaled work request on the initiator side and waits for its completion.</summary>
    private static async Task<uint> PostAndWaitAsync(AsyncWorkCompletion done, QueuePair qp, Prepare prepare, string what)
    {
        done.Reset();
        var wait = done.WaitAsync();
        var result = Post(done.WorkRequestId, qp, prepare);
        var wc = await wait.AsTask().WaitAsync(Timeout);
        WorkCompletionException.ThrowIfFailed(wc, what);
        return result;
    }

    private unsafe delegate uint Prepare(IbvSendWr* workRequest);

    private static unsafe Prepare Bind(MemoryWindow window, MemoryRegion region, IntPtr buffer, IbvAccessFlags access) =>
        wr => window.PrepareBind(wr, region.NativeRegion, (ulong)buffer, Size, access);

    private static unsafe Prepare Invalidate(MemoryWindow window) => wr =>
    {
        window.PrepareLocalInvalidate(wr);
        return 0;
    };

    private static unsafe uint Post(ulong wrId, QueuePair qp, Prepare prepare)
    {
        var wr = new IbvSendWr { WorkRequestId = wrId, SendFlags = IbvSendFlags.Signaled };
        var result = prepare(&wr);
        qp.PostSend(&wr);
        return result;
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

    private static unsafe byte[] Snapshot(IntPtr buffer) => new ReadOnlySpan<byte>((void*)buffer, Size).ToArray();

    private static unsafe void FreeBuffer(IntPtr buffer)
    {
        if (buffer != 0) NativeMemory.AlignedFree((void*)buffer);
    }

    private static unsafe IntPtr AllocateBuffer()
    {
        var p = (byte*)NativeMemory.AlignedAlloc(Size, 4096);
        for (var i = 0; i < Size; i++) p[i] = (byte)(i * 7 + 3);
        return (IntPtr)p;
    }
}
