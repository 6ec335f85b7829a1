using IserBlockd.Rdma;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.RdmaProbe;

/// <summary>
/// Everything one side of a connection needs, built on the bindings the iSER transport uses: a protection domain,
/// a registered buffer pool on it, one CQ drained by a <see cref="CompletionDispatcher"/> on the event loop, the RC
/// queue pair, receives posted ahead, and awaitable send and RDMA completions.
/// </summary>
internal sealed class RdmaEndpoint : IDisposable
{
    public const int ReceiveSlots = 4;
    private static readonly TimeSpan OperationTimeout = TimeSpan.FromSeconds(60);

    private readonly WorkRequestTable _table = new(32);
    private readonly AsyncWorkCompletion _sendDone = new();
    private readonly AsyncWorkCompletion _rdmaDone = new();
    private readonly List<RegisteredBuffer> _rented = [];
    private CompletionDispatcher? _dispatcher;

    private RdmaEndpoint(RdmaCmId id, int maxDataSize, int sendDepth)
    {
        Id = id;
        Device = id.Device ?? throw new InvalidOperationException("the connection id is not bound to an RDMA device yet");
        ProtectionDomain = ProtectionDomain.Allocate(Device);
        var dataClass = RoundUp(maxDataSize, 4096);
        Pool = new RegisteredBufferPool(new ProtectionDomainRegistrar(ProtectionDomain), new RegisteredBufferPoolOptions
        {
            SizeClasses = dataClass == 4096
                ? [new(4096, ReceiveSlots + 3)]
                : [new(4096, ReceiveSlots + 1), new(dataClass, 2)],
        });
        CompletionQueue = CompletionQueue.Create(Device, sendDepth + ReceiveSlots + 8);
        QueuePair = id.CreateQueuePair(ProtectionDomain, CompletionQueue, CompletionQueue, new QueuePairCapacity(sendDepth, ReceiveSlots));
        _sendDone.Register(_table);
        _rdmaDone.Register(_table);
        SendBuffer = Rent(RpingMessages.InfoSize);
        DataA = Rent(maxDataSize);
        DataB = Rent(maxDataSize);
        Receives = new ReceiveRing(QueuePair, _table, Enumerable.Range(0, ReceiveSlots).Select(_ => Rent(64)).ToList());
    }

    public RdmaCmId Id { get; }
    public DeviceContext Device { get; }
    public ProtectionDomain ProtectionDomain { get; }
    public RegisteredBufferPool Pool { get; }
    public CompletionQueue CompletionQueue { get; }
    public QueuePair QueuePair { get; }
    public ReceiveRing Receives { get; }
    public RegisteredBuffer SendBuffer { get; }
    /// <summary>rping's start_buf (client) / rdma_buf (server).</summary>
    public RegisteredBuffer DataA { get; }
    /// <summary>rping's rdma_buf on the client.</summary>
    public RegisteredBuffer DataB { get; }
    public CompletionDispatcher Dispatcher => _dispatcher!;

    /// <summary>Builds the endpoint, posts the receives and starts draining the CQ on the event loop.</summary>
    public static RdmaEndpoint Create(RdmaCmId id, int maxDataSize, int sendDepth = 16)
    {
        var endpoint = new RdmaEndpoint(id, maxDataSize, sendDepth);
        try
        {
            endpoint.Receives.PostAll();
            endpoint._dispatcher = new CompletionDispatcher(endpoint.CompletionQueue, endpoint._table);
            endpoint._dispatcher.UnknownCompletion += wc => Console.Error.WriteLine($"unexpected completion wr_id {wc.WorkRequestId:x} {wc.Status}");
            endpoint._dispatcher.Start(id.EventChannel.Loop);
            return endpoint;
        }
        catch
        {
            endpoint.Dispose();
            throw;
        }
    }

    private RegisteredBuffer Rent(int length)
    {
        if (!Pool.TryRent(length, out var buffer)) throw new InvalidOperationException($"no registered buffer of {length} bytes");
        _rented.Add(buffer);
        return buffer;
    }

    /// <summary>SENDs the first <paramref name="length"/> bytes of <see cref="SendBuffer"/> and waits for its completion.</summary>
    public async Task SendAsync(int length, string what)
    {
        _sendDone.Reset();
        var wait = _sendDone.WaitAsync();
        PostSend(IbvWrOpcode.Send, SendBuffer.Memory[..length], 0, 0, _sendDone.WorkRequestId);
        var wc = await wait.AsTask().WaitAsync(OperationTimeout).ConfigureAwait(false);
        WorkCompletionException.ThrowIfFailed(wc, $"SEND of {what}");
    }

    /// <summary>RDMA READs or WRITEs <paramref name="local"/> against the peer's registered memory and waits.</summary>
    public async Task<TimeSpan> RdmaAsync(IbvWrOpcode opcode, Memory<byte> local, ulong remoteAddress, uint remoteKey)
    {
        _rdmaDone.Reset();
        var wait = _rdmaDone.WaitAsync();
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        PostSend(opcode, local, remoteAddress, remoteKey, _rdmaDone.WorkRequestId);
        var wc = await wait.AsTask().WaitAsync(OperationTimeout).ConfigureAwait(false);
        WorkCompletionException.ThrowIfFailed(wc, $"{opcode} of {local.Length} bytes at 0x{remoteAddress:x} (rkey 0x{remoteKey:x})");
        if (opcode == IbvWrOpcode.RdmaRead && wc.Opcode != IbvWcOpcode.RdmaRead || opcode == IbvWrOpcode.RdmaWrite && wc.Opcode != IbvWcOpcode.RdmaWrite)
            throw new InvalidOperationException($"{opcode} completed as {wc.Opcode}");
        return System.Diagnostics.Stopwatch.GetElapsedTime(start);
    }

    /// <summary>Registers an extra completion handler and returns its work request id.</summary>
    public ulong Register(IWorkCompletionHandler handler) => _table.Add(handler);

    /// <summary>Posts a signaled send-queue work request without waiting.</summary>
    public unsafe void PostSend(IbvWrOpcode opcode, Memory<byte> local, ulong remoteAddress, uint remoteKey, ulong wrId)
    {
        // The pool's buffers carry their registration: the Memory<byte> leads back to lkey and address.
        if (!RegisteredBuffer.TryGetSegment(local, out var segment))
            throw new InvalidOperationException("the memory is not from a registered buffer pool");
        var sge = segment.ToSge();
        var wr = new IbvSendWr
        {
            WorkRequestId = wrId,
            ScatterGatherList = &sge,
            ScatterGatherCount = 1,
            Opcode = opcode,
            SendFlags = IbvSendFlags.Signaled,
            RemoteAddress = remoteAddress,
            RemoteKey = remoteKey,
        };
        QueuePair.PostSend(&wr);
    }

    /// <summary>
    /// Waits for the next received message; null once the connection is closed (the receives flushed, or
    /// <paramref name="disconnected"/> completed first).
    /// </summary>
    public async Task<byte[]?> ReceiveAsync(TimeSpan timeout, Task? disconnected = null)
    {
        var next = Receives.ReadAsync(CancellationToken.None).AsTask();
        if (disconnected != null && await Task.WhenAny(next, disconnected).WaitAsync(timeout).ConfigureAwait(false) == disconnected && !next.IsCompleted)
            return null;
        try
        {
            return await next.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (System.Threading.Channels.ChannelClosedException e) when (e.InnerException == null)
        {
            return null;
        }
    }

    /// <summary>Tears down in the order rdma-core needs; the handles would enforce it anyway.</summary>
    public void Dispose()
    {
        _dispatcher?.Dispose();
        QueuePair.Dispose();
        CompletionQueue.Dispose();
        foreach (var b in _rented) ((IDisposable)b).Dispose();
        _rented.Clear();
        Pool.Dispose();
        ProtectionDomain.Dispose();
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
}
