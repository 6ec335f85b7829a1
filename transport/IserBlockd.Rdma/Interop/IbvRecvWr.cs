using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary><c>struct ibv_recv_wr</c>: a receive buffer posted ahead of an incoming SEND.</summary>
[NativeStruct("struct ibv_recv_wr", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Sequential)]
public unsafe struct IbvRecvWr
{
    [NativeField("wr_id")] public ulong WorkRequestId;
    [NativeField("next")] public IbvRecvWr* Next;
    [NativeField("sg_list")] public IbvSge* ScatterGatherList;
    [NativeField("num_sge")] public int ScatterGatherCount;
}
