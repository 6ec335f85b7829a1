using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using IserBlockd.Rdma.Handles;
using IserBlockd.Rdma.Interop;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Rdma;

/// <summary>
/// An RDMA-CM event channel watched by an <see cref="RdmaEventLoop"/>. Each event is copied, routed to the
/// <see cref="RdmaCmId"/> it concerns, then acknowledged at once.
/// </summary>
public sealed unsafe class RdmaEventChannel : IDisposable, IReadableHandler
{
    private readonly ConcurrentDictionary<nint, RdmaCmId> _ids = new();
    private IDisposable? _registration;
    private int _disposed;

    private RdmaEventChannel(EventChannelHandle handle, RdmaEventLoop loop)
    {
        Handle = handle;
        Loop = loop;
        _registration = loop.Register(handle.Native->Fd, this, "RDMA-CM event channel");
    }

    internal EventChannelHandle Handle { get; }

    public RdmaEventLoop Loop { get; }

    /// <summary>
    /// Opens an event channel. Throws <see cref="RdmaUnavailableException"/> when the host has no RDMA
    /// (no device, or the rdma_cm module is not loaded).
    /// </summary>
    public static RdmaEventChannel Create(RdmaEventLoop? loop = null)
    {
        var handle = RdmaLibraries.Call(EventChannelHandle.Create);
        try
        {
            return new RdmaEventChannel(handle, loop ?? RdmaEventLoop.Shared);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Creates a connection id on this channel (TCP port space: iSER portals are TCP ports).</summary>
    public RdmaCmId CreateId(RdmaPortSpace portSpace = RdmaPortSpace.Tcp)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var handle = CmIdHandle.Create(Handle, portSpace);
        var id = new RdmaCmId(this, handle);
        _ids[(nint)handle.Native] = id;
        return id;
    }

    internal void Forget(RdmaCmId id, nint native) => _ids.TryRemove(new KeyValuePair<nint, RdmaCmId>(native, id));

    void IReadableHandler.OnReadable()
    {
        while (true)
        {
            RdmaCmEventNative* native;
            if (LibRdmacm.rdma_get_cm_event(Handle.Native, &native) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EAGAIN || errno == Errno.EINTR) return;
                // The channel is unusable: stop watching it and fail whoever waits for an event.
                var error = RdmaException.FromErrno("rdma_get_cm_event", errno);
                _registration?.Dispose();
                _registration = null;
                foreach (var id in _ids.Values) id.Fail(error);
                return;
            }
            Route(native);
        }
    }

    private void Route(RdmaCmEventNative* native)
    {
        // Copy everything out first: acknowledging frees the event (and the private data it points to).
        var type = native->Event;
        var status = native->Status;
        var conn = native->Connection;
        var privateData = conn.PrivateData != null && conn.PrivateDataLength > 0
            ? new ReadOnlySpan<byte>(conn.PrivateData, conn.PrivateDataLength).ToArray()
            : [];

        if (type == RdmaCmEventType.ConnectRequest)
        {
            // The new id exists only once this event is acknowledged; destroying it before would deadlock.
            var requestId = native->Id;
            _ids.TryGetValue((nint)native->ListenId, out var listener);
            LibRdmacm.rdma_ack_cm_event(native);
            var request = new RdmaCmId(this, CmIdHandle.Adopt(requestId, Handle));
            if (listener == null)
            {
                try
                {
                    request.Reject([]);
                }
                finally
                {
                    request.Dispose();
                }
                return;
            }
            _ids[(nint)requestId] = request;
            listener.Deliver(new RdmaCmEvent(type, status, privateData, conn.ResponderResources, conn.InitiatorDepth, request));
            return;
        }

        // Deliver before acknowledging: rdma_destroy_id waits for the ack, so the target cannot vanish meanwhile.
        if (_ids.TryGetValue((nint)native->Id, out var target))
            target.Deliver(new RdmaCmEvent(type, status, privateData, conn.ResponderResources, conn.InitiatorDepth, null));
        LibRdmacm.rdma_ack_cm_event(native);
    }

    /// <summary>Stops watching and destroys the channel once every id created on it is disposed.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _registration?.Dispose();
        Handle.Dispose();
    }
}
