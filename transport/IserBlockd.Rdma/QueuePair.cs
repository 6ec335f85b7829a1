using IserBlockd.Rdma.Handles;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma;

/// <summary>
/// The reliable-connected queue pair of an <see cref="RdmaCmId"/>. Posting calls the provider's
/// <c>post_send</c>/<c>post_recv</c> through the device context's ops table with caller-owned work requests:
/// nothing is marshalled or allocated. A work request (and its SGE array) only has to live for the call; the
/// memory its SGEs point at must stay registered until the work request completes.
/// </summary>
public sealed unsafe class QueuePair : IDisposable
{
    private readonly delegate* unmanaged[Cdecl]<IbvQp*, IbvSendWr*, IbvSendWr**, int> _postSend;
    private readonly delegate* unmanaged[Cdecl]<IbvQp*, IbvRecvWr*, IbvRecvWr**, int> _postRecv;
    private readonly IbvQp* _qp;

    internal QueuePair(QueuePairHandle handle, QueuePairCapacity capacity)
    {
        Handle = handle;
        Capacity = capacity;
        _qp = handle.CmId->Qp;
        var ops = &_qp->Context->Ops;
        _postSend = ops->PostSend;
        _postRecv = ops->PostRecv;
        if (_postSend == null || _postRecv == null)
        {
            handle.Dispose();
            throw new RdmaException("the RDMA provider does not implement post_send/post_recv in its context ops");
        }
    }

    internal QueuePairHandle Handle { get; }

    /// <summary>The depths the provider granted (at least those requested).</summary>
    public QueuePairCapacity Capacity { get; }

    /// <summary>The queue pair number.</summary>
    public uint Number => _qp->QpNumber;

    /// <summary>Posts a chain of send-queue work requests; throws naming the first one the provider refused.</summary>
    public void PostSend(IbvSendWr* workRequest)
    {
        var rc = TryPostSend(workRequest, out var bad);
        if (rc != 0) throw RdmaException.FromErrno($"ibv_post_send(wr_id {bad->WorkRequestId:x}, {bad->Opcode})", rc);
    }

    /// <inheritdoc cref="PostSend(IbvSendWr*)"/>
    public void PostSend(ref IbvSendWr workRequest)
    {
        fixed (IbvSendWr* wr = &workRequest) PostSend(wr);
    }

    /// <summary>Posts send work requests; returns 0 or the errno, with the first refused request in <paramref name="bad"/>.</summary>
    public int TryPostSend(IbvSendWr* workRequest, out IbvSendWr* bad)
    {
        var added = false;
        Handle.DangerousAddRef(ref added);
        try
        {
            IbvSendWr* failed = null;
            var rc = _postSend(_qp, workRequest, &failed);
            bad = failed == null ? workRequest : failed;
            return rc;
        }
        finally
        {
            Handle.DangerousRelease();
        }
    }

    /// <summary>Posts a chain of receive work requests; throws naming the first one the provider refused.</summary>
    public void PostReceive(IbvRecvWr* workRequest)
    {
        var rc = TryPostReceive(workRequest, out var bad);
        if (rc != 0) throw RdmaException.FromErrno($"ibv_post_recv(wr_id {bad->WorkRequestId:x})", rc);
    }

    /// <summary>Posts receive work requests; returns 0 or the errno, with the first refused request in <paramref name="bad"/>.</summary>
    public int TryPostReceive(IbvRecvWr* workRequest, out IbvRecvWr* bad)
    {
        var added = false;
        Handle.DangerousAddRef(ref added);
        try
        {
            IbvRecvWr* failed = null;
            var rc = _postRecv(_qp, workRequest, &failed);
            bad = failed == null ? workRequest : failed;
            return rc;
        }
        finally
        {
            Handle.DangerousRelease();
        }
    }

    /// <inheritdoc cref="PostReceive(IbvRecvWr*)"/>
    public void PostReceive(ref IbvRecvWr workRequest)
    {
        fixed (IbvRecvWr* wr = &workRequest) PostReceive(wr);
    }

    /// <summary>Destroys the queue pair (rdma_destroy_qp) once nothing else uses it.</summary>
    public void Dispose() => Handle.Dispose();
}
