using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

// Headers of the verbs objects the bindings read fields from. The sizes include the pthread mutex/cond members
// the C structs end with, so a layout change in rdma-core shows up in the layout test.

/// <summary><c>struct ibv_pd</c>.</summary>
[NativeStruct("struct ibv_pd", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IbvPd
{
    [NativeField("context")] public IbvContext* Context;
    [NativeField("handle")] public uint Handle;
}

/// <summary><c>struct ibv_mr</c>: lkey for local SGEs, rkey (the iSER STag) for the peer.</summary>
[NativeStruct("struct ibv_mr", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IbvMr
{
    [NativeField("context")] public IbvContext* Context;
    [NativeField("pd")] public IbvPd* ProtectionDomain;
    [NativeField("addr")] public void* Address;
    [NativeField("length")] public nuint Length;
    [NativeField("handle")] public uint Handle;
    [NativeField("lkey")] public uint LocalKey;
    [NativeField("rkey")] public uint RemoteKey;
}

/// <summary><c>struct ibv_comp_channel</c>: a file descriptor that becomes readable when an armed CQ gets a completion.</summary>
[NativeStruct("struct ibv_comp_channel", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IbvCompChannel
{
    [NativeField("context")] public IbvContext* Context;
    [NativeField("fd")] public int Fd;
    [NativeField("refcnt")] public int ReferenceCount;
}

/// <summary><c>struct ibv_cq</c>.</summary>
[NativeStruct("struct ibv_cq", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Explicit, Size = 128)]
internal unsafe struct IbvCq
{
    [NativeField("context")][FieldOffset(0)] public IbvContext* Context;
    [NativeField("channel")][FieldOffset(8)] public IbvCompChannel* Channel;
    [NativeField("cq_context")][FieldOffset(16)] public void* CqContext;
    [NativeField("handle")][FieldOffset(24)] public uint Handle;
    [NativeField("cqe")][FieldOffset(28)] public int Entries;
}

/// <summary><c>struct ibv_qp</c>.</summary>
[NativeStruct("struct ibv_qp", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Explicit, Size = 160)]
internal unsafe struct IbvQp
{
    [NativeField("context")][FieldOffset(0)] public IbvContext* Context;
    [NativeField("qp_context")][FieldOffset(8)] public void* QpContext;
    [NativeField("pd")][FieldOffset(16)] public IbvPd* ProtectionDomain;
    [NativeField("send_cq")][FieldOffset(24)] public IbvCq* SendCq;
    [NativeField("recv_cq")][FieldOffset(32)] public IbvCq* RecvCq;
    [NativeField("handle")][FieldOffset(48)] public uint Handle;
    [NativeField("qp_num")][FieldOffset(52)] public uint QpNumber;
    [NativeField("state")][FieldOffset(56)] public int State;
    [NativeField("qp_type")][FieldOffset(60)] public IbvQpType QpType;
}

/// <summary><c>struct ibv_qp_init_attr</c>, the argument of rdma_create_qp.</summary>
[NativeStruct("struct ibv_qp_init_attr", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IbvQpInitAttr
{
    [NativeField("qp_context")] public void* QpContext;
    [NativeField("send_cq")] public IbvCq* SendCq;
    [NativeField("recv_cq")] public IbvCq* RecvCq;
    [NativeField("srq")] public void* SharedReceiveQueue;
    [NativeField("cap")] public IbvQpCap Capabilities;
    [NativeField("qp_type")] public IbvQpType QpType;
    [NativeField("sq_sig_all")] public int SignalAllSends;
}

/// <summary><c>struct ibv_device_attr</c>: only the limits the connection setup needs are mapped.</summary>
[NativeStruct("struct ibv_device_attr", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Explicit, Size = 232)]
internal struct IbvDeviceAttr
{
    [NativeField("max_mr_size")][FieldOffset(80)] public ulong MaxMemoryRegionSize;
    [NativeField("max_qp")][FieldOffset(108)] public int MaxQueuePairs;
    [NativeField("max_qp_wr")][FieldOffset(112)] public int MaxQueuePairWorkRequests;
    [NativeField("device_cap_flags")][FieldOffset(116)] public IbvDeviceCapabilities Capabilities;
    [NativeField("max_sge")][FieldOffset(120)] public int MaxScatterGather;
    [NativeField("max_cqe")][FieldOffset(132)] public int MaxCompletionQueueEntries;
    [NativeField("max_mr")][FieldOffset(136)] public int MaxMemoryRegions;
    [NativeField("max_qp_rd_atom")][FieldOffset(144)] public int MaxQpReadAtomic;
    [NativeField("max_qp_init_rd_atom")][FieldOffset(156)] public int MaxQpInitiatorReadAtomic;
    [NativeField("max_mw")][FieldOffset(176)] public int MaxMemoryWindows;
    [NativeField("phys_port_cnt")][FieldOffset(227)] public byte PhysicalPortCount;
}
