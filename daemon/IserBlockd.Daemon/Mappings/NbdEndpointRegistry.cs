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
    /// <param name="settings">TLS and timeouts of the socket's server; null: the registry's options as they are.
    /// A socket already open with other settings is refused.</param>
    public Task<string> AddUnixAsync(string path, NbdExport export, NbdListenerSettings? settings = null) =>
        AddAsync("unix:" + path, export, settings, server => server.ListenUnix(path),
            (_, tls) => NbdUri.ForUnixSocket(path, export.Name, tls));

    /// <summary>Offers <paramref name="export"/> on TCP; returns its URI (with the real port when 0 was asked).</summary>
    public Task<string> AddTcpAsync(HostPort address, NbdExport export, NbdListenerSettings? settings = null) =>
        AddAsync("tcp:" + address, export, settings, server => server.ListenTcp(Resolve(address)),
            (listener, tls) => NbdUri.ForTcp(address with { Port = listener.Port }, export.Name, tls));

    private async Task<string> AddAsync(string key, NbdExport export, NbdListenerSettings? settings,
        Func<NbdServer, NbdListener> listen, Func<NbdListener, bool, string> uri)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_endpoints.TryGetValue(key, out var endpoint))
            {
                if (settings != null && endpoint.Settings != null && settings != endpoint.Settings)
                    throw new InvalidOperationException($"{key} is already served with other settings ({endpoint.Settings}); mappings on one socket or address must agree on TLS and timeouts");
            }
            else
            {
                var server = new NbdServer(settings?.Apply(options) ?? options, loggerFactory);
                try
                {
                    endpoint = new Endpoint(server, listen(server), settings);
                }
                catch
                {
                    await server.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
                _endpoints.Add(key, endpoint);
            }
            endpoint.Server.AddExport(export);
            return uri(endpoint.Listener, endpoint.Server.Options.Tls is { Required: true });
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

    private sealed record Endpoint(NbdServer Server, NbdListener Listener, NbdListenerSettings? Settings) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Listener.DisposeAsync().ConfigureAwait(false);
            await Server.DisposeAsync().ConfigureAwait(false);
        }
    }
}
