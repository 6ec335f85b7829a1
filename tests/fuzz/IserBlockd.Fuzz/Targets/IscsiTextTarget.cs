using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Discovery;
using IserBlockd.Iscsi.Negotiation;

namespace IserBlockd.Fuzz.Targets;

/// <summary>A text data segment straight into the key=value parser, the SendTargets answer reader and the operational negotiator.</summary>
public sealed class IscsiTextTarget : IFuzzTarget
{
    private static readonly IscsiPortal Asked = IscsiPortal.Parse("127.0.0.1:3260");

    public string Name => "iscsi-text";

    public IReadOnlyList<string> Instrumented => ["IserBlockd.Iscsi.dll"];

    public void Run(ReadOnlySpan<byte> input)
    {
        try
        {
            var keys = TextKeyValues.Parse(input);
            foreach (var target in SendTargetsResponse.Parse(keys, Asked)) _ = target.ToString();
            var negotiator = new OperationalNegotiator(new OperationalOptions(), isDiscovery: false);
            _ = negotiator.CreateOffers();
            _ = negotiator.ProcessTargetKeys(keys);
        }
        catch (IscsiException)
        {
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("sendtargets", TextKeyValues.Format([new("TargetName", "iqn.2026-11.io.iserblockd.fuzz:a"), new("TargetAddress", "127.0.0.1:3260,1"),
            new("TargetAddress", "[fe80::1%eth0]:3260,2"), new("TargetName", "iqn.2026-11.io.iserblockd.fuzz:b"), new("TargetAddress", "host.example:3261,1")]));
        var login = IscsiSeeds.Hex(IscsiSeeds.LoginResponse2);
        yield return ("tgtd-operational", login[48..(48 + 253)]);
    }
}
