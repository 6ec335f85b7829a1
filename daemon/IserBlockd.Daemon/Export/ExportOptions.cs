using IserBlockd.Daemon.Cli;
using IserBlockd.Daemon.Configuration;

namespace IserBlockd.Daemon.Export;

/// <summary>What <c>iserblockd export</c> was asked to serve: one LUN of one target, one way.</summary>
public sealed record ExportOptions
{
    /// <summary>Portal, target, LUN (null: the first disk LUN), initiator, transport, CHAP, digests: as iserblockctl's.</summary>
    public required ConnectSettings Connect { get; init; }
    public string? Socket { get; init; }
    public HostPort? Listen { get; init; }
    public DeviceSelection? Device { get; init; }
    public string ExportName { get; init; } = "";
    public bool ReadOnly { get; init; }
    /// <summary>NBD over TLS (qemu-nbd's --tls-creds) and the timeouts for --socket and --listen.</summary>
    public NbdListenerSettings Listener { get; init; } = NbdListenerSettings.Default;
    /// <summary>Client connections the export takes at once.</summary>
    public int MaxConnections { get; init; } = IserBlockd.BlockDev.Nbd.NbdExport.DefaultMaxConnections;
    /// <summary>Sockets the kernel uses for a /dev/nbdN.</summary>
    public int Connections { get; init; } = 4;

    public string Target => Connect.TargetName!;

    /// <summary>The node an export logs in as. Its name keys the ISID kept across restarts (fencing), so it names what is
    /// served: two exports of one target (other LUNs, other sockets) must not share an ISID, or each login would
    /// reinstate, and so cut off, the other's session.</summary>
    internal NodeSettings ToNode() =>
        Connect.ToNode($"export lun {(Connect.Lun is { } lun ? lun.ToString(System.Globalization.CultureInfo.InvariantCulture) : "first")} {Socket ?? Listen?.ToString() ?? Device?.ToString()}", []);

    internal LunMapping ToMapping(int lun) => new(lun, Device, Socket, Listen, ExportName, ReadOnly) { Listener = Listener, MaxConnections = MaxConnections };
}
