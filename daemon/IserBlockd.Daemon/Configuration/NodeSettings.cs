using IserBlockd.Transport.Selection;

namespace IserBlockd.Daemon.Configuration;

/// <summary>One iSCSI target the daemon logs into (a "node" in open-iscsi's words). Its LUNs are either listed
/// (<see cref="Luns"/>) or, with <c>"luns": "all"</c>, every disk LUN the target reports, exposed by <see cref="AllLuns"/>.</summary>
public sealed record NodeSettings(
    string Name,
    IReadOnlyList<HostPort> Portals,
    string Target,
    IscsiTransportKind Transport,
    ChapSettings? Chap,
    OperationalOverrides Operational,
    IReadOnlyList<LunMapping> Luns,
    LunTemplate? AllLuns = null);
