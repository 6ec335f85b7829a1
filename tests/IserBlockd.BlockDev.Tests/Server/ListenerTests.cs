using System.Net;
using System.Net.Sockets;
using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Tests.Support;
using IserBlockd.TestSupport;

namespace IserBlockd.BlockDev.Tests.Server;

public class ListenerTests
{
    [Fact]
    public async Task A_stale_socket_file_is_replaced_but_a_live_server_is_not()
    {
        using var dir = new TempDirectory();
        var path = dir.File("nbd.sock");
        StaleUnixSocket.Create(path);
        Assert.True(File.Exists(path));

        await using var first = new NbdServer();
        first.AddExport(new NbdExport("", new MemoryBlockDevice(1 << 20)));
        var listener = first.ListenUnix(path);
        await using var second = new NbdServer();
        Assert.Throws<IOException>(() => second.ListenUnix(path));

        using (var client = RawNbdClient.Open(path)) Assert.Equal(0u, client.ReadSync(0, 512).Error);
        await listener.DisposeAsync();
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task A_regular_file_in_the_way_is_left_alone()
    {
        using var dir = new TempDirectory();
        var path = dir.File("not-a-socket");
        await File.WriteAllTextAsync(path, "data");
        await using var server = new NbdServer();
        Assert.ThrowsAny<Exception>(() => server.ListenUnix(path));
        Assert.Equal("data", await File.ReadAllTextAsync(path));
    }

    [Fact]
    public async Task Tcp_listens_on_loopback_by_default_address_and_any_given_one()
    {
        await using var server = new NbdServer();
        server.AddExport(new NbdExport("", new MemoryBlockDevice(1 << 20)));
        await using var listener = server.ListenTcp(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.Equal(IPAddress.Loopback, ((IPEndPoint)listener.EndPoint).Address);
        Assert.StartsWith("tcp:127.0.0.1:", listener.Description);
        await using var v6 = server.ListenTcp(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        using var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.IPv6Loopback, v6.Port));
        var greeting = new byte[18];
        await socket.ReceiveAsync(greeting);
        Assert.Equal("NBDMAGIC"u8.ToArray(), greeting[..8]);
    }

    [Fact]
    public async Task A_tcp_address_served_by_one_server_is_refused_to_a_second()
    {
        await using var first = new NbdServer();
        first.AddExport(new NbdExport("", new MemoryBlockDevice(1 << 20)));
        await using var listener = first.ListenTcp(new IPEndPoint(IPAddress.Loopback, 0));
        await using var second = new NbdServer();
        second.AddExport(new NbdExport("", new MemoryBlockDevice(2 << 20)));
        var e = Assert.Throws<SocketException>(() => second.ListenTcp(new IPEndPoint(IPAddress.Loopback, listener.Port)));
        Assert.Equal(SocketError.AddressAlreadyInUse, e.SocketErrorCode);
    }

    [Fact]
    public async Task A_tcp_address_can_be_listened_on_again_once_its_server_closed_while_clients_linger()
    {
        int port;
        await using (var first = new NbdServer())
        {
            first.AddExport(new NbdExport("", new MemoryBlockDevice(1 << 20)));
            var listener = first.ListenTcp(new IPEndPoint(IPAddress.Loopback, 0));
            port = listener.Port;
            // A connected client keeps the old connection's address in use after the server closes it.
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
            var greeting = new byte[18];
            await client.ReceiveAsync(greeting);
        }
        await using var second = new NbdServer();
        second.AddExport(new NbdExport("", new MemoryBlockDevice(1 << 20)));
        await using var again = second.ListenTcp(new IPEndPoint(IPAddress.Loopback, port));
        Assert.Equal(port, again.Port);
    }

    [Fact]
    public async Task Disposing_the_server_stops_every_listener_and_connection()
    {
        using var dir = new TempDirectory();
        var server = new NbdServer();
        server.AddExport(new NbdExport("", new MemoryBlockDevice(1 << 20)));
        server.ListenUnix(dir.File("a.sock"));
        using var client = RawNbdClient.Open(dir.File("a.sock"));
        await server.DisposeAsync();
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
        Assert.False(File.Exists(dir.File("a.sock")));
        Assert.Throws<ObjectDisposedException>(() => server.ListenUnix(dir.File("b.sock")));
    }
}
