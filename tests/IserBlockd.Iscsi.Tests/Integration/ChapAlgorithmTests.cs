using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Security;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>
/// CHAP algorithm preference lists against real tgtd, which knows MD5 (5) and numbers SHA-1 as 7 (tgt 1.0.97's
/// usr/iscsi/chap.c: CHAP_DIGEST_ALG_SHA1 7, a 20-byte digest), where RFC 7143 and LIO mean SHA-256. tgtd picks
/// the first of 5 and 7 in our list, so the open-iscsi-style default offer 8,7,6,5 makes it choose 7.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class ChapAlgorithmTests(ITestOutputHelper output)
{
    private static readonly ChapCredentials Initiator = new("alice", ChapSecret.FromString("initiator-secret-1"));
    private static readonly ChapCredentials TargetSide = new("disk-target", ChapSecret.FromString("target-secret-22"));
    private static readonly ChapAlgorithm[] StrongestFirst = [ChapAlgorithm.Sha3_256, ChapAlgorithm.Sha256, ChapAlgorithm.Sha1, ChapAlgorithm.Md5];

    [Fact]
    public async Task Strongest_first_offer_falls_back_to_md5_when_tgtd_picks_its_sha1_numbered_7()
    {
        await using var bed = await TgtdTestBed.StartAsync(output, configure: t => t.RequireChapAsync("alice", "initiator-secret-1"));
        await using var session = await bed.LoginAsync(bed.Options() with { Chap = Initiator, ChapAlgorithms = StrongestFirst });
        var lun = await session.OpenLunAsync(1);
        Assert.Equal(64UL << 20, lun.SizeBytes);
        Assert.Contains(bed.Logs.Lines, l => l.Contains("chose CHAP_A=7 and refused a SHA-256 response") && l.Contains("offering CHAP_A=8,6,5"));
        Assert.Contains(bed.Logs.Lines, l => l.Contains("CHAP with algorithm Md5"));
        Assert.DoesNotContain(bed.Logs.Lines, l => l.Contains("initiator-secret-1"));
    }

    [Fact]
    public async Task Mutual_chap_with_the_strongest_first_offer_verifies_tgtd_with_md5()
    {
        await using var bed = await TgtdTestBed.StartAsync(output, configure: async t =>
        {
            await t.RequireChapAsync("alice", "initiator-secret-1");
            await t.SetOutgoingAccountAsync("disk-target", "target-secret-22");
        });
        await using var session = await bed.LoginAsync(bed.Options() with { Chap = Initiator, TargetChap = TargetSide, ChapAlgorithms = StrongestFirst });
        await session.OpenLunAsync(1);
        Assert.Contains(bed.Logs.Lines, l => l.Contains("CHAP with algorithm Md5") && l.Contains("(mutual)"));
        // A reconnection of the same session keeps the reduced offer: no second failed attempt.
        Assert.Single(bed.Logs.Lines, l => l.Contains("refused a SHA-256 response"));
    }

    [Fact]
    public async Task Sha256_alone_is_refused_not_authenticated_with_tgtds_sha1()
    {
        await using var bed = await TgtdTestBed.StartAsync(output, configure: t => t.RequireChapAsync("alice", "initiator-secret-1"));
        var e = await Assert.ThrowsAsync<ChapAlgorithmMismatchException>(() => bed.LoginAsync(bed.Options() with { Chap = Initiator, ChapAlgorithms = [ChapAlgorithm.Sha256] }));
        Assert.Contains("tgt computes SHA-1 for 7", e.Message);
        Assert.Empty(await bed.Target.ListSessionsAsync());
    }

    [Fact]
    public async Task Wrong_secret_with_the_strongest_first_offer_is_still_an_authentication_failure()
    {
        await using var bed = await TgtdTestBed.StartAsync(output, configure: t => t.RequireChapAsync("alice", "initiator-secret-1"));
        var wrong = new ChapCredentials("alice", ChapSecret.FromString("not-the-secret"));
        var e = await Assert.ThrowsAsync<AuthenticationFailedException>(() => bed.LoginAsync(bed.Options() with { Chap = wrong, ChapAlgorithms = StrongestFirst }));
        Assert.Equal(0x0201, e.Status);
        Assert.DoesNotContain("not-the-secret", e.Message);
        Assert.DoesNotContain(bed.Logs.Lines, l => l.Contains("not-the-secret") || l.Contains("initiator-secret-1"));
    }
}
