using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary>
/// <c>struct ibv_send_wr</c>: a send-queue work request (SEND, RDMA WRITE, RDMA READ). The unions of the C struct
/// are mirrored by explicit offsets; the RDMA member of <c>wr</c> (READ/WRITE) and the <c>bind_mw</c> member (a
/// memory window bound per iSER command) are exposed; atomics, UD and TSO are not used.
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
    /// <summary>For LOCAL_INV and SEND_WITH_INV: the rkey to invalidate (same storage as <see cref="ImmediateData"/>).</summary>
    [NativeField("invalidate_rkey")][FieldOffset(36)] public uint InvalidateRemoteKey;
    /// <summary>Remote virtual address for RDMA READ/WRITE (<c>wr.rdma.remote_addr</c>).</summary>
    [NativeField("wr.rdma.remote_addr")][FieldOffset(40)] public ulong RemoteAddress;
    /// <summary>Remote key (STag) for RDMA READ/WRITE (<c>wr.rdma.rkey</c>).</summary>
    [NativeField("wr.rdma.rkey")][FieldOffset(48)] public uint RemoteKey;
    /// <summary>For BIND_MW: the window to bind (<c>bind_mw.mw</c>).</summary>
    [NativeField("bind_mw.mw")][FieldOffset(80)] public IbvMw* BindWindow;
    /// <summary>For BIND_MW: the rkey the window gets (its old key with a new low byte, see <see cref="IbvMw.NextRemoteKey"/>).</summary>
    [NativeField("bind_mw.rkey")][FieldOffset(88)] public uint BindRemoteKey;
    /// <summary>For BIND_MW: the registration, range and remote access the window grants.</summary>
    [NativeField("bind_mw.bind_info")][FieldOffset(96)] public IbvMwBindInfo BindInfo;
}

/// <summary><c>struct ibv_mw_bind_info</c>: what a memory window is bound over.</summary>
[NativeStruct("struct ibv_mw_bind_info", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Sequential)]
public unsafe struct IbvMwBindInfo
{
    /// <summary>The registration the window lies in; it must have been registered with <see cref="IbvAccessFlags.MemoryWindowBind"/>.</summary>
    [NativeField("mr")] public void* MemoryRegion;
    [NativeField("addr")] public ulong Address;
    [NativeField("length")] public ulong Length;
    [NativeField("mw_access_flags")] public IbvAccessFlags Access;
}

/// <summary><c>struct ibv_mw</c>: a memory window (type 2: bound to one queue pair by a bind work request).</summary>
[NativeStruct("struct ibv_mw", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Sequential)]
public unsafe struct IbvMw
{
    [NativeField("context")] public void* Context;
    [NativeField("pd")] public void* ProtectionDomain;
    /// <summary>The current key; a bind sets it to the key the bind work request names.</summary>
    [NativeField("rkey")] public uint RemoteKey;
    [NativeField("handle")] public uint Handle;
    [NativeField("type")] public IbvMwType Type;

    /// <summary>
    /// The key for the next bind: the same upper 24 bits (the window's index), the low 8 bits (the consumer-owned key)
    /// incremented, as verbs.h's ibv_inc_rkey; a key from an earlier bind then names nothing.
    /// </summary>
    public static uint NextRemoteKey(uint rkey) => (rkey & 0xffffff00u) | ((rkey + 1) & 0xffu);
}
