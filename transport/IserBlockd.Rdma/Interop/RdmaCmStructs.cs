using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary><c>struct rdma_event_channel</c>.</summary>
[NativeStruct("struct rdma_event_channel", "rdma/rdma_cma.h")]
[StructLayout(LayoutKind.Sequential)]
internal struct RdmaEventChannelNative
{
    [NativeField("fd")] public int Fd;
}

/// <summary>
/// <c>struct rdma_cm_id</c>. <c>route.addr</c> holds two <c>sockaddr_storage</c> unions (source, destination);
/// the fields after it are reached by explicit offsets.
/// </summary>
[NativeStruct("struct rdma_cm_id", "rdma/rdma_cma.h")]
[StructLayout(LayoutKind.Explicit, Size = 416)]
internal unsafe struct RdmaCmIdNative
{
    [NativeField("verbs")][FieldOffset(0)] public IbvContext* Verbs;
    [NativeField("channel")][FieldOffset(8)] public RdmaEventChannelNative* Channel;
    [NativeField("context")][FieldOffset(16)] public void* Context;
    [NativeField("qp")][FieldOffset(24)] public IbvQp* Qp;
    [NativeField("route.addr.src_storage")][FieldOffset(32)] public fixed byte SourceAddress[128];
    [NativeField("route.addr.dst_storage")][FieldOffset(160)] public fixed byte DestinationAddress[128];
    [NativeField("ps")][FieldOffset(344)] public RdmaPortSpace PortSpace;
    [NativeField("port_num")][FieldOffset(348)] public byte PortNumber;
    [NativeField("pd")][FieldOffset(400)] public IbvPd* ProtectionDomain;
    [NativeField("qp_type")][FieldOffset(408)] public IbvQpType QpType;
}

/// <summary><c>struct rdma_conn_param</c>: connection request/accept parameters and the CM private data.</summary>
[NativeStruct("struct rdma_conn_param", "rdma/rdma_cma.h")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct RdmaConnParam
{
    [NativeField("private_data")] public void* PrivateData;
    [NativeField("private_data_len")] public byte PrivateDataLength;
    [NativeField("responder_resources")] public byte ResponderResources;
    [NativeField("initiator_depth")] public byte InitiatorDepth;
    [NativeField("flow_control")] public byte FlowControl;
    [NativeField("retry_count")] public byte RetryCount;
    [NativeField("rnr_retry_count")] public byte RnrRetryCount;
    [NativeField("srq")] public byte SharedReceiveQueue;
    [NativeField("qp_num")] public uint QpNumber;
}

/// <summary><c>struct rdma_cm_event</c>; <c>param</c> is a union of which only the connection member is used.</summary>
[NativeStruct("struct rdma_cm_event", "rdma/rdma_cma.h")]
[StructLayout(LayoutKind.Explicit, Size = 80)]
internal unsafe struct RdmaCmEventNative
{
    [NativeField("id")][FieldOffset(0)] public RdmaCmIdNative* Id;
    [NativeField("listen_id")][FieldOffset(8)] public RdmaCmIdNative* ListenId;
    [NativeField("event")][FieldOffset(16)] public RdmaCmEventType Event;
    [NativeField("status")][FieldOffset(20)] public int Status;
    [NativeField("param.conn")][FieldOffset(24)] public RdmaConnParam Connection;
}
