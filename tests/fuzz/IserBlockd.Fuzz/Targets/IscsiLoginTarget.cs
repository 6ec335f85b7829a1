using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Security;
using IserBlockd.Transport.Tcp;
using Microsoft.Extensions.Logging.Abstractions;

namespace IserBlockd.Fuzz.Targets;

/// <summary>
/// A target's answers to our login: Login Responses with their key=value text, CHAP (every algorithm, one-way and
/// mutual, chosen by the first input byte), redirection and operational negotiation.
/// </summary>
public sealed class IscsiLoginTarget : IFuzzTarget
{
    private static readonly ChapAlgorithm[][] Offers =
        [[ChapAlgorithm.Md5], [ChapAlgorithm.Sha3_256, ChapAlgorithm.Sha256, ChapAlgorithm.Sha1, ChapAlgorithm.Md5], [ChapAlgorithm.Sha256], [ChapAlgorithm.Sha1]];

    public string Name => "iscsi-login";

    public IReadOnlyList<string> Instrumented => ["IserBlockd.Iscsi.dll", "IserBlockd.Transport.dll"];

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 1) return;
        var flags = input[0];
        var chap = (flags & 1) != 0;
        var settings = new LoginSettings
        {
            SessionType = (flags & 4) != 0 ? IscsiSessionType.Discovery : IscsiSessionType.Normal,
            InitiatorName = "iqn.2026-11.io.iserblockd.fuzz:initiator",
            TargetName = "iqn.2026-11.io.iserblockd.fuzz:target",
            Isid = Isid.Parse("800000000001"),
            Chap = chap ? new ChapCredentials("initiator", ChapSecret.FromString("initiator-secret")) : null,
            TargetChap = chap && (flags & 2) != 0 ? new ChapCredentials("target", ChapSecret.FromString("target-secret-1")) : null,
            ChapAlgorithms = Offers[(flags >> 3) & 3],
            Portal = IscsiPortal.Parse("127.0.0.1:3260"),
        };
        var connection = new TagFixingConnection(new TcpIscsiConnection(new ReplayStream(input[1..].ToArray()), null, null));
        try
        {
            _ = new LoginExchange(connection, settings, NullLogger.Instance).RunAsync(default).GetAwaiter().GetResult();
        }
        catch (IscsiException)
        {
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("tgtd-none", [0, .. IscsiSeeds.Hex(IscsiSeeds.LoginResponse1), .. IscsiSeeds.Hex(IscsiSeeds.LoginResponse2)]);
        yield return ("chap-md5", [1, .. IscsiSeeds.ChapLogin("5")]);
        yield return ("chap-sha256-mutual", [1 | 2 | 8, .. IscsiSeeds.ChapLogin("7")]);
        yield return ("chap-sha3-mutual", [1 | 2 | 8, .. IscsiSeeds.ChapLogin("8")]);
        yield return ("redirect", [0, .. IscsiSeeds.Concat(
            IscsiSeeds.LoginResponse(Iscsi.Pdu.LoginStage.SecurityNegotiation, Iscsi.Pdu.LoginStage.SecurityNegotiation, false, 0, ("TargetAddress", "[::1]:3261,1")))]);
        yield return ("discovery", [4, .. IscsiSeeds.Hex(IscsiSeeds.LoginResponse1), .. IscsiSeeds.Hex(IscsiSeeds.LoginResponse2)]);
    }
}
