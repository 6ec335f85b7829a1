using IserBlockd.Iscsi.Negotiation;

namespace IserBlockd.Iscsi.Discovery;

/// <summary>
/// Parses a SendTargets answer (RFC 7143 Appendix C): TargetName starts a target, each following TargetAddress
/// (<c>host[:port],tpgt</c>, IPv6 in brackets) adds a portal. A target listed without TargetAddress is reached
/// through the portal that was asked.
/// </summary>
public static class SendTargetsResponse
{
    public static IReadOnlyList<DiscoveredTarget> Parse(IEnumerable<KeyValuePair<string, string>> keys, IscsiPortal askedPortal)
    {
        var targets = new List<DiscoveredTarget>();
        string? name = null;
        List<IscsiPortal> portals = [];
        void Flush()
        {
            if (name == null) return;
            if (portals.Count == 0) portals.Add(askedPortal);
            targets.Add(new DiscoveredTarget(name, portals));
            name = null;
            portals = [];
        }
        foreach (var (key, value) in keys)
        {
            switch (key)
            {
                case IscsiKeys.TargetName:
                    Flush();
                    name = value;
                    break;
                case IscsiKeys.TargetAddress:
                    if (name == null) throw new IscsiProtocolException($"SendTargets answer has TargetAddress={value} before any TargetName");
                    if (!IscsiPortal.TryParse(value, out var portal, out var error))
                        throw new IscsiProtocolException($"SendTargets answer has a bad TargetAddress '{value}': {error}");
                    portals.Add(portal);
                    break;
                case IscsiKeys.SendTargets when value == IscsiKeys.Reject:
                    throw new IscsiProtocolException("the target rejected SendTargets");
            }
        }
        Flush();
        return targets;
    }
}
