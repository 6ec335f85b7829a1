using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary><c>struct ibv_wc</c>: a work completion polled from a completion queue.</summary>
[NativeStruct("struct ibv_wc", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Sequential)]
public struct IbvWc
{
    [NativeField("wr_id")] public ulong WorkRequestId;
    [NativeField("status")] public IbvWcStatus Status;
    /// <summary>Valid only when <see cref="Status"/> is success (the provider leaves it undefined otherwise).</summary>
    [NativeField("opcode")] public IbvWcOpcode Opcode;
    [NativeField("vendor_err")] public uint VendorError;
    [NativeField("byte_len")] public uint ByteLength;
    [NativeField("imm_data")] public uint ImmediateData;
    [NativeField("qp_num")] public uint QueuePairNumber;
    [NativeField("src_qp")] public uint SourceQueuePair;
    [NativeField("wc_flags")] public IbvWcFlags Flags;
    [NativeField("pkey_index")] public ushort PartitionKeyIndex;
    [NativeField("slid")] public ushort SourceLid;
    [NativeField("sl")] public byte ServiceLevel;
    [NativeField("dlid_path_bits")] public byte DestinationLidPathBits;

    /// <summary>With <see cref="IbvWcFlags.WithInvalidate"/>: the rkey the peer's Send with Invalidate invalidated (<c>invalidated_rkey</c>, same storage as imm_data).</summary>
    public readonly uint InvalidatedRemoteKey => ImmediateData;

    public readonly bool IsReceive => ((int)Opcode & (int)IbvWcOpcode.Receive) != 0;
}
