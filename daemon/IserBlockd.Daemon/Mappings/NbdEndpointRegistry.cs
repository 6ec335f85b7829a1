using System.Net;
using System.Net.Sockets;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.Daemon.Configuration;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Mappings;

/// <summary>
/// The NBD servers the daemon listens with: one per Unix socket path or TCP address, shared by the LUNs
/// exported there under different names. A server is started with its first export and stopped with its
/// last, so clients on one socket only ever see the exports of that socket.
/// </summary>
public sealed class NbdEndpointRegistry(NbdServerOptions options, ILoggerFactory loggerFactory) : IAsyncDisposable
{
    private readonly Dictionary<string, Endpoint> _endpoints = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _lock = new(1, 1);

    /// <summary>Offers <paramref name="export"/> on a Unix socket; returns its URI.</summary>
    public Task<string> AddUnixAsync(string path, NbdExport export) =>
        AddAsync("unix:" + path, export, server => server.ListenUnix(path), _ => NbdUri.ForUnixSocket(path, export.Name, options.Tls is { Required: true }));

    /// <summary>Offers <paramref name="export"/> on TCP; returns its URI (with the real port when 0 was asked).</summary>
    public Task<string> AddTcpAsync(HostPort address, NbdExport export) =>
        AddAsync("tcp:" + address, export, server => server.ListenTcp(Resolve(address)),
            listener => NbdUri.ForTcp(address with { Port = listener.Port }, export.Name, options.Tls is { Required: true }));

    private async Task<string> AddAsync(string key, NbdExport export, Func<NbdServer, NbdListener> listen, Func<NbdListener, string> uri)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!_endpoints.TryGetValue(key, out var endpoint))
            {
                var server = new NbdServer(options, loggerFactory);
                try
                {
                    endpoint = new Endpoint(server, listen(server));
                }
                catch
                {
                    await server.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
                _endpoints.Add(key, endpoint);
            }
            endpoint.Server.AddExport(export);
            return uri(endpoint.Listener);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Withdraws an export. When it was the endpoint's last one, the endpoint closes: its
    /// clients' started requests are answered, then they are disconnected.</summary>
    public async Task RemoveAsync(string? unixPath, HostPort? tcpAddress, string exportName)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach (var key in new[] { unixPath == null ? null : "unix:" + unixPath, tcpAddress == null ? null : "tcp:" + tcpAddress })
            {
                if (key == null || !_endpoints.TryGetValue(key, out var endpoint)) continue;
                endpoint.Server.RemoveExport(exportName);
                if (endpoint.Server.Exports.Count == 0)
                {
                    _endpoints.Remove(key);
                    await endpoint.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    private static IPEndPoint Resolve(HostPort address)
    {
        if (IPAddress.TryParse(address.Host, out var ip))
            return new IPEndPoint(ip, address.Port);
        var resolved = Dns.GetHostAddresses(address.Host);
        var first = resolved.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? resolved.FirstOrDefault()
            ?? throw new SocketException((int)SocketError.HostNotFound);
        return new IPEndPoint(first, address.Port);
    }

    public async ValueTask DisposeAsync()
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach (var endpoint in _endpoints.Values)
                await endpoint.DisposeAsync().ConfigureAwait(false);
            _endpoints.Clear();
        }
        finally
        {
            _lock.Release();
        }
    }

    private sealed record Endpoint(NbdServer Server, NbdListener Listener) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Listener.DisposeAsync().ConfigureAwait(false);
            await Server.DisposeAsync().ConfigureAwait(false);
        }
    }
}
