using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary>
/// <c>struct epoll_event</c> as glibc declares it on x86-64: packed, 12 bytes, <c>data</c> at offset 4.
/// (Other architectures align <c>data</c> to 8; <see cref="RdmaEventLoop"/> refuses to start there.)
/// </summary>
[NativeStruct("struct epoll_event", "sys/epoll.h")]
[StructLayout(LayoutKind.Sequential, Pack = 4)]
internal struct EpollEvent
{
    [NativeField("events")] public uint Events;
    [NativeField("data")] public ulong Data;
}
