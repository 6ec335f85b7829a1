namespace IserBlockd.Iscsi.Discovery;

/// <summary>A target named in a SendTargets answer, with every portal it is reachable at.</summary>
public sealed record DiscoveredTarget(string Name, IReadOnlyList<IscsiPortal> Portals);
