using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary>
/// <c>struct ibv_context</c>: an open device. ibv_post_send, ibv_post_recv, ibv_poll_cq, ibv_req_notify_cq, ibv_alloc_mw
/// and ibv_dealloc_mw are static inline in verbs.h and call through <see cref="Ops"/>; rdma-core's <c>verbs_set_ops</c> fills
/// these four legacy slots for every provider (rxe included), so the bindings call them the same way.
/// </summary>
[NativeStruct("struct ibv_context", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Explicit, Size = 328)]
internal unsafe struct IbvContext
{
    [NativeField("device")][FieldOffset(0)] public void* Device;
    [NativeField("ops")][FieldOffset(8)] public IbvContextOps Ops;
    [NativeField("cmd_fd")][FieldOffset(264)] public int CommandFd;
    [NativeField("async_fd")][FieldOffset(268)] public int AsyncFd;
    [NativeField("num_comp_vectors")][FieldOffset(272)] public int CompletionVectorCount;
}

/// <summary><c>struct ibv_context_ops</c>: only the data-path slots the inline verbs use are mapped.</summary>
[NativeStruct("struct ibv_context_ops", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Explicit, Size = 256)]
internal unsafe struct IbvContextOps
{
    [NativeField("alloc_mw")][FieldOffset(56)] public delegate* unmanaged[Cdecl]<IbvPd*, IbvMwType, IbvMw*> AllocMw;
    [NativeField("dealloc_mw")][FieldOffset(72)] public delegate* unmanaged[Cdecl]<IbvMw*, int> DeallocMw;
    [NativeField("poll_cq")][FieldOffset(88)] public delegate* unmanaged[Cdecl]<IbvCq*, int, IbvWc*, int> PollCq;
    [NativeField("req_notify_cq")][FieldOffset(96)] public delegate* unmanaged[Cdecl]<IbvCq*, int, int> ReqNotifyCq;
    [NativeField("post_send")][FieldOffset(200)] public delegate* unmanaged[Cdecl]<IbvQp*, IbvSendWr*, IbvSendWr**, int> PostSend;
    [NativeField("post_recv")][FieldOffset(208)] public delegate* unmanaged[Cdecl]<IbvQp*, IbvRecvWr*, IbvRecvWr**, int> PostRecv;
}
