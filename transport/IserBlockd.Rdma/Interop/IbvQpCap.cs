using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary><c>struct ibv_qp_cap</c>: queue depths and scatter/gather limits of a queue pair.</summary>
[NativeStruct("struct ibv_qp_cap", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Sequential)]
public struct IbvQpCap
{
    [NativeField("max_send_wr")] public uint MaxSendWorkRequests;
    [NativeField("max_recv_wr")] public uint MaxReceiveWorkRequests;
    [NativeField("max_send_sge")] public uint MaxSendScatterGather;
    [NativeField("max_recv_sge")] public uint MaxReceiveScatterGather;
    [NativeField("max_inline_data")] public uint MaxInlineData;
}
