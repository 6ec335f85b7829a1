using IserBlockd.Daemon.Configuration;

namespace IserBlockd.Daemon.Mappings;

/// <summary>NBD URIs (the NBD protocol's URI format, as nbdinfo, nbdcopy and qemu take them).</summary>
public static class NbdUri
{
    public static string ForUnixSocket(string socketPath, string exportName) =>
        $"nbd+unix:///{Uri.EscapeDataString(exportName)}?socket={socketPath}";

    public static string ForTcp(HostPort address, string exportName) =>
        $"nbd://{address}/{Uri.EscapeDataString(exportName)}";
}
