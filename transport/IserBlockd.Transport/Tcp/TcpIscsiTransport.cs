using System.Net;
using System.Net.Sockets;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.ConnectionPort;

namespace IserBlockd.Transport.Tcp;

/// <summary>iSCSI over TCP (RFC 7143): connects sockets to portals and frames PDUs on them.</summary>
public sealed class TcpIscsiTransport : IIscsiTransport
{
    private readonly TcpTransportOptions _options;

    public TcpIscsiTransport(TcpTransportOptions? options = null) => _options = options ?? new TcpTransportOptions();

    public string Name => "tcp";

    public async ValueTask<IIscsiConnection> ConnectAsync(IscsiPortal portal, CancellationToken cancellationToken)
    {
        var addresses = await PortalAddresses.ResolveAsync(portal, cancellationToken).ConfigureAwait(false);

        SocketException? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.NoDelay = true;
                if (_options.KeepAlive) socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
                if (_options.SocketReceiveBufferSize > 0) socket.ReceiveBufferSize = _options.SocketReceiveBufferSize;
                if (_options.SocketSendBufferSize > 0) socket.SendBufferSize = _options.SocketSendBufferSize;
                await socket.ConnectAsync(new IPEndPoint(address, portal.Port), cancellationToken).ConfigureAwait(false);
                return new TcpIscsiConnection(new NetworkStream(socket, ownsSocket: true), socket.LocalEndPoint, socket.RemoteEndPoint, _options);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        throw new IscsiTransportException($"cannot connect to {portal.Address}: {Describe(last!)}", last);
    }

    internal static string Describe(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "connection refused",
        SocketError.HostUnreachable => "host unreachable",
        SocketError.NetworkUnreachable => "network unreachable",
        SocketError.TimedOut => "connection timed out",
        SocketError.ConnectionReset => "connection reset by peer",
        _ => e.Message,
    };
}
