namespace IserBlockd.Daemon.Configuration;

/// <summary>How one LUN of a node is exposed: a kernel NBD device, an NBD server on a Unix socket
/// and/or on TCP — at least one of them.</summary>
public sealed record LunMapping(
    int Lun,
    DeviceSelection? Device,
    string? Socket,
    HostPort? Listen,
    string ExportName,
    bool ReadOnly)
{
    public bool HasExport => Socket != null || Listen != null;

    /// <summary>TLS and timeouts of the NBD server behind <see cref="Socket"/> and <see cref="Listen"/>.</summary>
    public NbdListenerSettings Listener { get; init; } = NbdListenerSettings.Default;

    /// <summary>Client connections the export takes at once (NBD_REP_ERR_POLICY beyond).</summary>
    public int MaxConnections { get; init; } = IserBlockd.BlockDev.Nbd.NbdExport.DefaultMaxConnections;
}
