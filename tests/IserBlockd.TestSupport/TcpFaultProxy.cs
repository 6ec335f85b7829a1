using System.Net;
using System.Net.Sockets;

namespace IserBlockd.TestSupport;

/// <summary>
/// A TCP proxy on a free loopback port in front of a real server (e.g. tgtd), for fault tests: it can flip a byte
/// of what the server sends, stall a direction, or cut every connection. One upstream connection per client.
/// </summary>
public sealed class TcpFaultProxy : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly IPEndPoint _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(Socket Client, Socket Server)> _pairs = [];
    private readonly Task _accepting;
    private long _corruptAt = -1;
    private long _serverBytes;
    private volatile bool _stalled;

    public TcpFaultProxy(IPEndPoint upstream)
    {
        _upstream = upstream;
        _listener = new Socket(upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(upstream.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, 0));
        _listener.Listen(16);
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    /// <summary>Bytes the server has sent through the proxy so far (all connections).</summary>
    public long ServerBytes => Interlocked.Read(ref _serverBytes);

    /// <summary>Flips one bit of the server's byte <paramref name="afterBytes"/> bytes from now.</summary>
    public void CorruptServerByte(long afterBytes) => Interlocked.Exchange(ref _corruptAt, ServerBytes + afterBytes);

    /// <summary>While stalled, nothing is forwarded in either direction (the peers see a silent network).</summary>
    public bool Stalled
    {
        get => _stalled;
        set => _stalled = value;
    }

    /// <summary>Resets every proxied connection (both sides see the connection drop).</summary>
    public void CutAll()
    {
        lock (_pairs)
        {
            foreach (var (client, server) in _pairs)
            {
                client.LingerState = new LingerOption(true, 0);
                client.Dispose();
                server.Dispose();
            }
            _pairs.Clear();
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            var server = new Socket(_upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            client.NoDelay = true;
            try { await server.ConnectAsync(_upstream, _stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
                client.Dispose();
                server.Dispose();
                continue;
            }
            lock (_pairs) _pairs.Add((client, server));
            _ = PumpAsync(client, server, fromServer: false);
            _ = PumpAsync(server, client, fromServer: true);
        }
    }

    private async Task PumpAsync(Socket from, Socket to, bool fromServer)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, _stop.Token);
                if (n == 0) break;
                while (_stalled) await Task.Delay(10, _stop.Token);
                if (fromServer)
                {
                    var start = Interlocked.Add(ref _serverBytes, n) - n;
                    var at = Interlocked.Read(ref _corruptAt);
                    if (at >= start && at < start + n && Interlocked.CompareExchange(ref _corruptAt, -1, at) == at)
                        buffer[at - start] ^= 0x10;
                }
                var sent = 0;
                while (sent < n) sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), _stop.Token);
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            try { to.Dispose(); } catch (ObjectDisposedException) { }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        CutAll();
        try { await _accepting; } catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
