using System.Net;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma.Tests;

public sealed unsafe class SocketAddressCodecTests
{
    [Fact]
    public void IPv4_is_written_as_sockaddr_in_in_network_byte_order()
    {
        var storage = stackalloc byte[SocketAddressCodec.MaxSize];
        new Span<byte>(storage, SocketAddressCodec.MaxSize).Fill(0xEE);
        SocketAddressCodec.Write(new IPEndPoint(IPAddress.Parse("10.99.0.1"), 3260), storage);
        // AF_INET = 2 (host order), port 3260 = 0x0CBC big-endian, address, 8 zero bytes, rest cleared
        Assert.Equal(new byte[] { 2, 0, 0x0C, 0xBC, 10, 99, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, new Span<byte>(storage, 16).ToArray());
        Assert.True(new Span<byte>(storage + 16, SocketAddressCodec.MaxSize - 16).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.99.0.1"), 3260), SocketAddressCodec.Read(storage));
    }

    [Fact]
    public void IPv6_round_trips_with_its_scope()
    {
        var storage = stackalloc byte[SocketAddressCodec.MaxSize];
        var endPoint = new IPEndPoint(IPAddress.Parse("fe80::1%7"), 3260);
        SocketAddressCodec.Write(endPoint, storage);
        Assert.Equal(10, storage[0]); // AF_INET6
        Assert.Equal(0x0C, storage[2]);
        Assert.Equal(0xBC, storage[3]);
        Assert.Equal(0xFE, storage[8]);
        Assert.Equal(7u, *(uint*)(storage + 24));
        Assert.Equal(endPoint, SocketAddressCodec.Read(storage));
    }

    [Fact]
    public void An_unset_address_reads_as_null_and_other_families_are_refused()
    {
        var storage = stackalloc byte[SocketAddressCodec.MaxSize];
        new Span<byte>(storage, SocketAddressCodec.MaxSize).Clear();
        Assert.Null(SocketAddressCodec.Read(storage));
        var e = Assert.Throws<ArgumentException>(() =>
        {
            var s = stackalloc byte[SocketAddressCodec.MaxSize];
            SocketAddressCodec.Write(new DnsLikeEndPoint(), s);
        });
        Assert.Contains("not supported by RDMA-CM", e.Message);
    }

    /// <summary>An IPEndPoint whose family is neither IPv4 nor IPv6.</summary>
    private sealed class DnsLikeEndPoint() : IPEndPoint(IPAddress.Loopback, 1)
    {
        public override System.Net.Sockets.AddressFamily AddressFamily => System.Net.Sockets.AddressFamily.Unix;
    }
}
