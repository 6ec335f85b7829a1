using IserBlockd.Transport.Selection;

namespace IserBlockd.Daemon.Configuration;

/// <summary>One iSCSI target the daemon logs into (a "node" in open-iscsi's words).</summary>
public sealed record NodeSettings(
    string Name,
    IReadOnlyList<HostPort> Portals,
    string Target,
    IscsiTransportKind Transport,
    ChapSettings? Chap,
    OperationalOverrides Operational,
    IReadOnlyList<LunMapping> Luns);
