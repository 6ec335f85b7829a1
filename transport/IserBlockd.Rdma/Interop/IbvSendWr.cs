using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary>
/// <c>struct ibv_send_wr</c>: a send-queue work request (SEND, RDMA WRITE, RDMA READ). The unions of the C struct
/// are mirrored by explicit offsets; only the RDMA member of <c>wr</c> is exposed (atomics, UD and memory-window
/// binding are not used by iSER).
/// </summary>
[NativeStruct("struct ibv_send_wr", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Explicit, Size = 128)]
public unsafe struct IbvSendWr
{
    [NativeField("wr_id")][FieldOffset(0)] public ulong WorkRequestId;
    [NativeField("next")][FieldOffset(8)] public IbvSendWr* Next;
    [NativeField("sg_list")][FieldOffset(16)] public IbvSge* ScatterGatherList;
    [NativeField("num_sge")][FieldOffset(24)] public int ScatterGatherCount;
    [NativeField("opcode")][FieldOffset(28)] public IbvWrOpcode Opcode;
    [NativeField("send_flags")][FieldOffset(32)] public IbvSendFlags SendFlags;
    /// <summary>Immediate data (network byte order) or, for SEND_WITH_INV, the rkey to invalidate.</summary>
    [NativeField("imm_data")][FieldOffset(36)] public uint ImmediateData;
    /// <summary>Remote virtual address for RDMA READ/WRITE (<c>wr.rdma.remote_addr</c>).</summary>
    [NativeField("wr.rdma.remote_addr")][FieldOffset(40)] public ulong RemoteAddress;
    /// <summary>Remote key (STag) for RDMA READ/WRITE (<c>wr.rdma.rkey</c>).</summary>
    [NativeField("wr.rdma.rkey")][FieldOffset(48)] public uint RemoteKey;
}
