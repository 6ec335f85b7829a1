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
}
