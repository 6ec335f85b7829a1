using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary><c>struct sockaddr_in</c> (port and address in network byte order).</summary>
[NativeStruct("struct sockaddr_in", "netinet/in.h")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SockAddrIn
{
    [NativeField("sin_family")] public ushort Family;
    [NativeField("sin_port")] public ushort Port;
    [NativeField("sin_addr")] public uint Address;
    [NativeField("sin_zero")] public fixed byte Zero[8];
}

/// <summary><c>struct sockaddr_in6</c>.</summary>
[NativeStruct("struct sockaddr_in6", "netinet/in.h")]
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SockAddrIn6
{
    [NativeField("sin6_family")] public ushort Family;
    [NativeField("sin6_port")] public ushort Port;
    [NativeField("sin6_flowinfo")] public uint FlowInfo;
    [NativeField("sin6_addr")] public fixed byte Address[16];
    [NativeField("sin6_scope_id")] public uint ScopeId;
}

/// <summary>Converts between <see cref="IPEndPoint"/> and the C socket address structs, in a caller-provided buffer.</summary>
internal static unsafe class SocketAddressCodec
{
    private const ushort AfInet = 2;
    private const ushort AfInet6 = 10;

    /// <summary>Size of the largest form written by <see cref="Write"/>; a 128-byte <c>sockaddr_storage</c> always fits.</summary>
    public const int MaxSize = 128;

    /// <summary>Writes <paramref name="endPoint"/> as sockaddr_in or sockaddr_in6 into <paramref name="storage"/>.</summary>
    public static void Write(IPEndPoint endPoint, byte* storage)
    {
        new Span<byte>(storage, MaxSize).Clear();
        if (endPoint.AddressFamily == AddressFamily.InterNetwork)
        {
            var sin = (SockAddrIn*)storage;
            sin->Family = AfInet;
            sin->Port = BinaryPrimitives.ReverseEndianness((ushort)endPoint.Port);
            endPoint.Address.TryWriteBytes(new Span<byte>(&sin->Address, 4), out _);
        }
        else if (endPoint.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var sin6 = (SockAddrIn6*)storage;
            sin6->Family = AfInet6;
            sin6->Port = BinaryPrimitives.ReverseEndianness((ushort)endPoint.Port);
            endPoint.Address.TryWriteBytes(new Span<byte>(sin6->Address, 16), out _);
            sin6->ScopeId = (uint)endPoint.Address.ScopeId;
        }
        else
        {
            throw new ArgumentException($"Address family {endPoint.AddressFamily} is not supported by RDMA-CM; use IPv4 or IPv6.", nameof(endPoint));
        }
    }

    /// <summary>Reads a sockaddr_in/sockaddr_in6; null for an unset (AF_UNSPEC) or other family.</summary>
    public static IPEndPoint? Read(byte* storage)
    {
        var family = *(ushort*)storage;
        if (family == AfInet)
        {
            var sin = (SockAddrIn*)storage;
            return new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(&sin->Address, 4)), BinaryPrimitives.ReverseEndianness(sin->Port));
        }
        if (family == AfInet6)
        {
            var sin6 = (SockAddrIn6*)storage;
            return new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(sin6->Address, 16), sin6->ScopeId), BinaryPrimitives.ReverseEndianness(sin6->Port));
        }
        return null;
    }
}
