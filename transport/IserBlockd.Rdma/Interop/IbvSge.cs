using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary><c>struct ibv_sge</c>: one piece of registered local memory a work request reads or writes.</summary>
[NativeStruct("struct ibv_sge", "infiniband/verbs.h")]
[StructLayout(LayoutKind.Sequential)]
public struct IbvSge
{
    [NativeField("addr")] public ulong Address;
    [NativeField("length")] public uint Length;
    [NativeField("lkey")] public uint LocalKey;

    public IbvSge(ulong address, uint length, uint localKey)
    {
        Address = address;
        Length = length;
        LocalKey = localKey;
    }
}
