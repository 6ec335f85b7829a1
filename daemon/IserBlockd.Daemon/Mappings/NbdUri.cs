using IserBlockd.Daemon.Configuration;

namespace IserBlockd.Daemon.Mappings;

/// <summary>NBD URIs (the NBD protocol's URI format, as nbdinfo, nbdcopy and qemu take them).</summary>
public static class NbdUri
{
    /// <param name="tls">The server requires TLS: the URI scheme says so (nbds+unix).</param>
    public static string ForUnixSocket(string socketPath, string exportName, bool tls = false) =>
        $"{(tls ? "nbds" : "nbd")}+unix:///{Uri.EscapeDataString(exportName)}?socket={socketPath}";

    /// <param name="tls">The server requires TLS: the URI scheme says so (nbds).</param>
    public static string ForTcp(HostPort address, string exportName, bool tls = false) =>
        $"{(tls ? "nbds" : "nbd")}://{address}/{Uri.EscapeDataString(exportName)}";
}
