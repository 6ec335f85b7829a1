using System.Net;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using IserBlockd.Rdma.Handles;
using IserBlockd.Rdma.Interop;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Rdma;

/// <summary>
/// An RDMA-CM connection id (<c>rdma_cm_id</c>): the RDMA counterpart of a socket. The initiator side resolves the
/// portal's address and route, creates its queue pair, then connects with the iSER private data. Its events
/// arrive through the owning <see cref="RdmaEventChannel"/>; the async methods below wait for the ones they expect
/// and turn failure events into <see cref="RdmaConnectionException"/>.
/// </summary>
public sealed class RdmaCmId : IDisposable
{
    private readonly Channel<RdmaCmEvent> _events = Channel.CreateUnbounded<RdmaCmEvent>(
        new UnboundedChannelOptions { AllowSynchronousContinuations = false });
    private readonly nint _native;
    private int _disposed;

    internal unsafe RdmaCmId(RdmaEventChannel channel, CmIdHandle handle)
    {
        EventChannel = channel;
        Handle = handle;
        _native = (nint)handle.Native;
    }

    internal CmIdHandle Handle { get; }

    public RdmaEventChannel EventChannel { get; }

    /// <summary>The device the id is bound to: available once its address is resolved (or a request arrived).</summary>
    public unsafe DeviceContext? Device
    {
        get
        {
            using var _ = Use();
            var verbs = Handle.Native->Verbs;
            return verbs == null ? null : new DeviceContext(verbs, Handle);
        }
    }

    /// <summary>The local address, once bound or resolved.</summary>
    public unsafe IPEndPoint? LocalEndPoint
    {
        get { using var _ = Use(); return SocketAddressCodec.Read(Handle.Native->SourceAddress); }
    }

    /// <summary>The peer address, once resolved or connected.</summary>
    public unsafe IPEndPoint? RemoteEndPoint
    {
        get { using var _ = Use(); return SocketAddressCodec.Read(Handle.Native->DestinationAddress); }
    }

    internal void Deliver(RdmaCmEvent e) => _events.Writer.TryWrite(e);

    /// <summary>The event channel broke: every wait on this id fails with <paramref name="error"/>.</summary>
    internal void Fail(RdmaException error) => _events.Writer.TryComplete(error);

    /// <summary>Waits for the next event on this id.</summary>
    public async ValueTask<RdmaCmEvent> ReadEventAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _events.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException e)
        {
            if (e.InnerException is RdmaException error) throw error;
            throw new ObjectDisposedException(nameof(RdmaCmId), "The RDMA-CM id was disposed while waiting for an event.");
        }
    }

    /// <summary>Resolves <paramref name="destination"/> to an RDMA device and port (rdma_resolve_addr).</summary>
    public async Task ResolveAddressAsync(IPEndPoint destination, IPEndPoint? source = null, TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
    {
        var operation = $"rdma_resolve_addr({destination})";
        StartResolveAddress(destination, source, ToMilliseconds(timeout ?? TimeSpan.FromSeconds(5)), operation);
        await ExpectAsync(RdmaCmEventType.AddressResolved, operation, cancellationToken).ConfigureAwait(false);
    }

    private unsafe void StartResolveAddress(IPEndPoint destination, IPEndPoint? source, int timeoutMs, string operation)
    {
        var dst = stackalloc byte[SocketAddressCodec.MaxSize];
        var src = stackalloc byte[SocketAddressCodec.MaxSize];
        SocketAddressCodec.Write(destination, dst);
        if (source != null) SocketAddressCodec.Write(source, src);
        using var _ = Use();
        if (LibRdmacm.rdma_resolve_addr(Handle.Native, source == null ? null : src, dst, timeoutMs) != 0)
            throw RdmaException.FromErrno(operation, Marshal.GetLastPInvokeError());
    }

    /// <summary>Resolves the route to the resolved address (rdma_resolve_route).</summary>
    public async Task ResolveRouteAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var operation = $"rdma_resolve_route({RemoteEndPoint})";
        StartResolveRoute(ToMilliseconds(timeout ?? TimeSpan.FromSeconds(5)), operation);
        await ExpectAsync(RdmaCmEventType.RouteResolved, operation, cancellationToken).ConfigureAwait(false);
    }

    private unsafe void StartResolveRoute(int timeoutMs, string operation)
    {
        using var _ = Use();
        if (LibRdmacm.rdma_resolve_route(Handle.Native, timeoutMs) != 0)
            throw RdmaException.FromErrno(operation, Marshal.GetLastPInvokeError());
    }

    /// <summary>
    /// Creates the reliable-connected queue pair of this id on <paramref name="protectionDomain"/>, reporting
    /// completions to the given CQs. The CM moves it through INIT/RTR/RTS while connecting.
    /// </summary>
    public unsafe QueuePair CreateQueuePair(ProtectionDomain protectionDomain, CompletionQueue sendQueue, CompletionQueue receiveQueue,
        QueuePairCapacity capacity)
    {
        using (Use())
        {
            var verbs = Handle.Native->Verbs;
            if (verbs == null) throw new InvalidOperationException("Resolve the address before creating the queue pair: the id has no device yet.");
            if (protectionDomain.Device.Native != verbs || sendQueue.Device.Native != verbs || receiveQueue.Device.Native != verbs)
                throw new ArgumentException($"The protection domain ({protectionDomain.Device}) and completion queues " +
                    $"({sendQueue.Device}, {receiveQueue.Device}) must be on the device the connection resolved to ({Device}).");
        }
        var attributes = new IbvQpInitAttr
        {
            SendCq = sendQueue.Handle.Native,
            RecvCq = receiveQueue.Handle.Native,
            QpType = IbvQpType.ReliableConnected,
            SignalAllSends = 0,
            Capabilities = new IbvQpCap
            {
                MaxSendWorkRequests = (uint)capacity.SendWorkRequests,
                MaxReceiveWorkRequests = (uint)capacity.ReceiveWorkRequests,
                MaxSendScatterGather = (uint)capacity.SendScatterGather,
                MaxReceiveScatterGather = (uint)capacity.ReceiveScatterGather,
                MaxInlineData = (uint)capacity.InlineData,
            },
        };
        var handle = QueuePairHandle.Create(Handle, protectionDomain.Handle, sendQueue.Handle, receiveQueue.Handle, &attributes);
        var actual = attributes.Capabilities;
        return new QueuePair(handle, new QueuePairCapacity(
            (int)actual.MaxSendWorkRequests, (int)actual.MaxReceiveWorkRequests,
            (int)actual.MaxSendScatterGather, (int)actual.MaxReceiveScatterGather, (int)actual.MaxInlineData));
    }

    /// <summary>
    /// Connects (rdma_connect) with <paramref name="privateData"/> and waits until the connection is established.
    /// Returns the private data of the peer's accept.
    /// </summary>
    public async Task<ReadOnlyMemory<byte>> ConnectAsync(ConnectionParameters parameters, ReadOnlyMemory<byte> privateData,
        CancellationToken cancellationToken = default)
    {
        var operation = $"rdma_connect({RemoteEndPoint})";
        StartConnect(parameters, privateData.Span, operation);
        var established = await ExpectAsync(RdmaCmEventType.Established, operation, cancellationToken).ConfigureAwait(false);
        return established.PrivateData;
    }

    /// <summary>Binds to a local address (for a listener; port 0 picks one).</summary>
    public unsafe void Bind(IPEndPoint local)
    {
        var address = stackalloc byte[SocketAddressCodec.MaxSize];
        SocketAddressCodec.Write(local, address);
        using var _ = Use();
        if (LibRdmacm.rdma_bind_addr(Handle.Native, address) != 0)
            throw RdmaException.FromErrno($"rdma_bind_addr({local})", Marshal.GetLastPInvokeError());
    }

    /// <summary>Listens for connection requests; read them with <see cref="AcceptRequestAsync"/>.</summary>
    public unsafe void Listen(int backlog = 16)
    {
        using var _ = Use();
        if (LibRdmacm.rdma_listen(Handle.Native, backlog) != 0)
            throw RdmaException.FromErrno($"rdma_listen({LocalEndPoint})", Marshal.GetLastPInvokeError());
    }

    /// <summary>Waits for the next connection request on a listening id.</summary>
    public async Task<RdmaCmEvent> AcceptRequestAsync(CancellationToken cancellationToken = default)
    {
        var e = await ExpectAsync(RdmaCmEventType.ConnectRequest, $"rdma_listen({LocalEndPoint})", cancellationToken).ConfigureAwait(false);
        return e;
    }

    /// <summary>Accepts a connection request (on the id from <see cref="RdmaCmEvent.ConnectionRequest"/>) and waits until it is established.</summary>
    public async Task AcceptAsync(ConnectionParameters parameters, ReadOnlyMemory<byte> privateData, CancellationToken cancellationToken = default)
    {
        var operation = $"rdma_accept({RemoteEndPoint})";
        StartAccept(parameters, privateData.Span, operation);
        await ExpectAsync(RdmaCmEventType.Established, operation, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Rejects a connection request.</summary>
    public unsafe void Reject(ReadOnlySpan<byte> privateData)
    {
        if (privateData.Length > byte.MaxValue) throw new ArgumentException("RDMA-CM private data is at most 255 bytes.", nameof(privateData));
        using var _ = Use();
        fixed (byte* data = privateData)
        {
            if (LibRdmacm.rdma_reject(Handle.Native, data, (byte)privateData.Length) != 0)
                throw RdmaException.FromErrno("rdma_reject", Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>Starts an orderly disconnect (the QP goes to the error state; posted work requests flush).</summary>
    public unsafe void Disconnect()
    {
        using var _ = Use();
        if (LibRdmacm.rdma_disconnect(Handle.Native) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            // EINVAL: not connected (any more) - the disconnect the caller wants has already happened.
            if (errno != Errno.EINVAL) throw RdmaException.FromErrno("rdma_disconnect", errno);
        }
    }

    /// <summary>Waits for RDMA_CM_EVENT_DISCONNECTED (or a device removal), ignoring other events.</summary>
    public async Task<RdmaCmEvent> WaitForDisconnectAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var e = await ReadEventAsync(cancellationToken).ConfigureAwait(false);
            if (e.Type is RdmaCmEventType.Disconnected or RdmaCmEventType.DeviceRemoval or RdmaCmEventType.TimewaitExit) return e;
        }
    }

    private unsafe void StartConnect(ConnectionParameters parameters, ReadOnlySpan<byte> privateData, string operation) =>
        CallWithParameters(parameters, privateData, operation, &LibRdmacm.rdma_connect);

    private unsafe void StartAccept(ConnectionParameters parameters, ReadOnlySpan<byte> privateData, string operation) =>
        CallWithParameters(parameters, privateData, operation, &LibRdmacm.rdma_accept);

    private unsafe void CallWithParameters(ConnectionParameters parameters, ReadOnlySpan<byte> privateData, string operation,
        delegate*<RdmaCmIdNative*, RdmaConnParam*, int> call)
    {
        if (privateData.Length > byte.MaxValue) throw new ArgumentException("RDMA-CM private data is at most 255 bytes.", nameof(privateData));
        using var _ = Use();
        fixed (byte* data = privateData)
        {
            var native = new RdmaConnParam
            {
                PrivateData = data,
                PrivateDataLength = (byte)privateData.Length,
                ResponderResources = parameters.ResponderResources,
                InitiatorDepth = parameters.InitiatorDepth,
                RetryCount = parameters.RetryCount,
                RnrRetryCount = parameters.RnrRetryCount,
            };
            if (call(Handle.Native, &native) != 0)
                throw RdmaException.FromErrno(operation, Marshal.GetLastPInvokeError());
        }
    }

    private async Task<RdmaCmEvent> ExpectAsync(RdmaCmEventType expected, string operation, CancellationToken cancellationToken)
    {
        var e = await ReadEventAsync(cancellationToken).ConfigureAwait(false);
        if (e.Type == expected) return e;
        var message = $"{operation}: expected {RdmaCmEvent.Name(expected)} but got {e}";
        if (e.Type == RdmaCmEventType.Rejected) throw new RdmaConnectionRejectedException(message, e.Status, e.PrivateData);
        throw new RdmaConnectionException(message, e.Type, e.Status);
    }

    private static int ToMilliseconds(TimeSpan timeout) =>
        (int)Math.Clamp(timeout.TotalMilliseconds, 1, int.MaxValue);

    private HandleUse Use() => new(Handle);

    /// <summary>Destroys the id (its queue pair must be disposed first; the handles enforce the order anyway).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        EventChannel.Forget(this, _native);
        _events.Writer.TryComplete();
        Handle.Dispose();
    }
}

/// <summary>Holds a reference on a handle for the duration of a native call.</summary>
internal readonly ref struct HandleUse
{
    private readonly SafeHandle _handle;

    public HandleUse(SafeHandle handle)
    {
        _handle = handle;
        var added = false;
        handle.DangerousAddRef(ref added);
    }

    public void Dispose() => _handle.DangerousRelease();
}

/// <summary>
/// rdma_connect/rdma_accept parameters. Defaults follow the kernel iSER initiator: up to 7 transport retries,
/// 6 RNR retries, and one outstanding RDMA READ as initiator (iSER initiators never issue RDMA READs).
/// </summary>
public readonly record struct ConnectionParameters(
    byte ResponderResources = 1,
    byte InitiatorDepth = 1,
    byte RetryCount = 7,
    byte RnrRetryCount = 6)
{
    public ConnectionParameters() : this(1, 1, 7, 6) { }
}

/// <summary>Requested (and, after creation, actual) depths of a queue pair.</summary>
public readonly record struct QueuePairCapacity(
    int SendWorkRequests,
    int ReceiveWorkRequests,
    int SendScatterGather = 1,
    int ReceiveScatterGather = 1,
    int InlineData = 0);
