using IserBlockd.Daemon.Configuration;
using IserBlockd.Transport.Selection;

namespace IserBlockd.Daemon.Export;

/// <summary>What <c>iserblockd export</c> was asked to serve: one LUN, one way.</summary>
public sealed record ExportOptions
{
    public required IReadOnlyList<HostPort> Portals { get; init; }
    public required string Target { get; init; }
    public int Lun { get; init; }
    public string? Socket { get; init; }
    public HostPort? Listen { get; init; }
    public DeviceSelection? Device { get; init; }
    public string ExportName { get; init; } = "";
    public bool ReadOnly { get; init; }
    public string? InitiatorName { get; init; }
    public IscsiTransportKind Transport { get; init; } = IscsiTransportKind.Auto;
    public ChapSettings? Chap { get; init; }
    public OperationalOverrides Operational { get; init; } = OperationalOverrides.None;
    /// <summary>Sockets the kernel uses for a /dev/nbdN.</summary>
    public int Connections { get; init; } = 4;

    internal NodeSettings ToNode() => new("export", Portals, Target, Transport, Chap, Operational, [ToMapping()]);

    internal LunMapping ToMapping() => new(Lun, Device, Socket, Listen, ExportName, ReadOnly);
}
