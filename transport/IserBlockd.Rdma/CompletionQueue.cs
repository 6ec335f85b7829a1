using System.Runtime.InteropServices;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Handles;
using IserBlockd.Rdma.Interop;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Rdma;

/// <summary>
/// A completion queue with its own completion channel. <see cref="Poll"/> and <see cref="RequestNotification"/>
/// call the provider's <c>poll_cq</c>/<c>req_notify_cq</c> through the device context's ops table (they are static
/// inline in verbs.h); the channel descriptor becomes readable after an armed CQ receives a completion.
/// Use it through a <see cref="CompletionDispatcher"/>, which drains and re-arms it on the event loop.
/// </summary>
public sealed unsafe class CompletionQueue : ICompletionQueue, IDisposable
{
    private readonly CompletionChannelHandle _channel;
    private readonly delegate* unmanaged[Cdecl]<IbvCq*, int, IbvWc*, int> _pollCq;
    private readonly delegate* unmanaged[Cdecl]<IbvCq*, int, int> _reqNotifyCq;

    private CompletionQueue(CompletionQueueHandle handle, CompletionChannelHandle channel, DeviceContext device)
    {
        Handle = handle;
        Device = device;
        _channel = channel;
        var ops = &handle.Native->Context->Ops;
        _pollCq = ops->PollCq;
        _reqNotifyCq = ops->ReqNotifyCq;
        if (_pollCq == null || _reqNotifyCq == null)
            throw new RdmaException("the RDMA provider does not implement poll_cq/req_notify_cq in its context ops");
        // ibv_get_cq_event must never block: ConsumeEvents reads until EAGAIN.
        RdmaEventLoop.SetNonBlocking(channel.Native->Fd, "completion channel");
    }

    internal CompletionQueueHandle Handle { get; }

    public DeviceContext Device { get; }

    /// <summary>The number of entries the provider actually allocated (at least the number requested).</summary>
    public int Capacity => Handle.Native->Entries;

    /// <summary>The completion channel's descriptor (non-blocking once registered with an event loop).</summary>
    public int NotificationFd => _channel.Native->Fd;

    /// <summary>Creates a CQ of at least <paramref name="entries"/> entries with a completion channel of its own.</summary>
    public static CompletionQueue Create(DeviceContext device, int entries, int completionVector = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(entries, 1);
        var channel = CompletionChannelHandle.Create(device);
        try
        {
            var cq = CompletionQueueHandle.Create(device, entries, channel, completionVector);
            try
            {
                return new CompletionQueue(cq, channel, device);
            }
            catch
            {
                cq.Dispose();
                throw;
            }
        }
        finally
        {
            // The CQ keeps the channel referenced; it is destroyed after the CQ.
            channel.Dispose();
        }
    }

    /// <summary>Polls up to <c>completions.Length</c> work completions; returns how many were written.</summary>
    public int Poll(Span<IbvWc> completions)
    {
        var added = false;
        Handle.DangerousAddRef(ref added);
        try
        {
            int n;
            fixed (IbvWc* wc = completions)
                n = _pollCq(Handle.Native, completions.Length, wc);
            if (n < 0) throw new RdmaException($"ibv_poll_cq failed ({n}): the completion queue is in an error state (overrun?)", -n);
            return n;
        }
        finally
        {
            Handle.DangerousRelease();
        }
    }

    /// <summary>Arms the CQ: the next completion makes the channel readable (ibv_req_notify_cq).</summary>
    public void RequestNotification(bool solicitedOnly = false)
    {
        var added = false;
        Handle.DangerousAddRef(ref added);
        try
        {
            var rc = _reqNotifyCq(Handle.Native, solicitedOnly ? 1 : 0);
            if (rc != 0) throw RdmaException.FromErrno("ibv_req_notify_cq", rc);
        }
        finally
        {
            Handle.DangerousRelease();
        }
    }

    /// <summary>
    /// Reads every pending channel event (ibv_get_cq_event) and acknowledges them at once (ibv_ack_cq_events), so
    /// that destroying the CQ never waits. Returns the number of events.
    /// </summary>
    public int ConsumeEvents()
    {
        uint count = 0;
        while (true)
        {
            IbvCq* cq;
            void* context;
            if (LibIbverbs.ibv_get_cq_event(_channel.Native, &cq, &context) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EAGAIN || errno == Errno.EINTR) break;
                if (count > 0) LibIbverbs.ibv_ack_cq_events(Handle.Native, count);
                throw RdmaException.FromErrno("ibv_get_cq_event", errno);
            }
            count++;
        }
        if (count > 0) LibIbverbs.ibv_ack_cq_events(Handle.Native, count);
        return (int)count;
    }

    public void Dispose() => Handle.Dispose();
}
