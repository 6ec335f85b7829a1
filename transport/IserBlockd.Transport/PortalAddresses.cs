using System.Net;
using System.Net.Sockets;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.ConnectionPort;

namespace IserBlockd.Transport;

/// <summary>The addresses a portal names: its literal, or what DNS answers, in DNS order (every transport tries them in turn).</summary>
public static class PortalAddresses
{
    /// <exception cref="IscsiTransportException">The name does not resolve, or resolves to nothing.</exception>
    public static async ValueTask<IPAddress[]> ResolveAsync(IscsiPortal portal, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(portal.Host, out var literal)) return [literal];
        IPAddress[] addresses;
        try { addresses = await Dns.GetHostAddressesAsync(portal.Host, cancellationToken).ConfigureAwait(false); }
        catch (SocketException e) { throw new IscsiTransportException($"cannot resolve '{portal.Host}': {e.Message}", e); }
        if (addresses.Length == 0) throw new IscsiTransportException($"'{portal.Host}' has no address");
        return addresses;
    }
}
