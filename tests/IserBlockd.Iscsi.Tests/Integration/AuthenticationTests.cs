using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Security;
using IserBlockd.Iscsi.ConnectionPort;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>Login against real tgtd: no authentication, CHAP, mutual CHAP, and each way of getting it wrong.</summary>
[Trait("Category", "RealPeer")]
public sealed class AuthenticationTests(ITestOutputHelper output)
{
    private static readonly ChapCredentials Initiator = new("alice", ChapSecret.FromString("initiator-secret-1"));
    private static readonly ChapCredentials TargetSide = new("disk-target", ChapSecret.FromString("target-secret-22"));

    [Fact]
    public async Task No_authentication_logs_in_and_reads()
    {
        await using var bed = await TgtdTestBed.StartAsync(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        Assert.Equal(64UL << 20, lun.SizeBytes);
        Assert.Equal(1, session.Parameters.TargetPortalGroupTag);
        var sessions = await bed.Target.ListSessionsAsync();
        Assert.Equal(TgtdTestBed.InitiatorName, Assert.Single(sessions).InitiatorName);
    }

    [Fact]
    public async Task One_way_chap_logs_in()
    {
        await using var bed = await TgtdTestBed.StartAsync(output, configure: t => t.RequireChapAsync("alice", "initiator-secret-1"));
        await using var session = await bed.LoginAsync(bed.Options() with { Chap = Initiator });
        var lun = await session.OpenLunAsync(1);
        Assert.Equal(512u, lun.BlockSize);
    }

    [Fact]
    public async Task Mutual_chap_logs_in_and_verifies_the_target()
    {
        await using var bed = await TgtdTestBed.StartAsync(output, configure: async t =>
        {
            await t.RequireChapAsync("alice", "initiator-secret-1");
            await t.SetOutgoingAccountAsync("disk-target", "target-secret-22");
        });
        await using var session = await bed.LoginAsync(bed.Options() with { Chap = Initiator, TargetChap = TargetSide });
        await session.OpenLunAsync(1);
        Assert.Contains(bed.Logs.Lines, l => l.Contains("(mutual)"));
    }

    [Fact]
    public async Task Wrong_initiator_secret_is_an_authentication_failure()
    {
        await using var bed = await TgtdTestBed.StartAsync(output, configure: t => t.RequireChapAsync("alice", "initiator-secret-1"));
        var wrong = new ChapCredentials("alice", ChapSecret.FromString("not-the-secret"));
        var e = await Assert.ThrowsAsync<AuthenticationFailedException>(() => bed.LoginAsync(bed.Options() with { Chap = wrong }));
        Assert.Equal(0x0201, e.Status);
        Assert.Contains("authentication failure", e.Message);
        Assert.DoesNotContain("not-the-secret", e.Message);
        Assert.DoesNotContain(bed.Logs.Lines, l => l.Contains("not-the-secret") || l.Contains("initiator-secret-1"));
    }

    [Fact]
    public async Task Wrong_target_secret_is_a_target_authentication_failure()
    {
        await using var bed = await TgtdTestBed.StartAsync(output, configure: async t =>
        {
            await t.RequireChapAsync("alice", "initiator-secret-1");
            await t.SetOutgoingAccountAsync("disk-target", "target-secret-22");
        });
        var expectingOther = new ChapCredentials("disk-target", ChapSecret.FromString("a-different-target-secret"));
        var e = await Assert.ThrowsAsync<TargetAuthenticationFailedException>(() => bed.LoginAsync(bed.Options() with { Chap = Initiator, TargetChap = expectingOther }));
        Assert.Contains("target secret mismatch", e.Message);
    }

    [Fact]
    public async Task Chap_required_but_not_configured_fails_clearly()
    {
        await using var bed = await TgtdTestBed.StartAsync(output, configure: t => t.RequireChapAsync("alice", "initiator-secret-1"));
        var e = await Assert.ThrowsAsync<AuthenticationFailedException>(() => bed.LoginAsync());
        Assert.Contains(bed.Target.Name, e.Message);
    }

    [Fact]
    public async Task Unknown_target_is_target_not_found()
    {
        await using var bed = await TgtdTestBed.StartAsync(output);
        var e = await Assert.ThrowsAsync<TargetNotFoundException>(() => bed.LoginAsync(bed.Options() with { TargetName = "iqn.2026-11.io.iserblockd.test:nosuch" }));
        Assert.Contains("target not found", e.Message);
        Assert.Contains("iqn.2026-11.io.iserblockd.test:nosuch", e.Message);
    }

    [Fact]
    public async Task Initiator_outside_the_address_acl_is_refused()
    {
        // Only a documentation address may log in (TEST-NET-1), so 127.0.0.1 is outside the ACL.
        await using var bed = await TgtdTestBed.StartAsync(output, bindAddress: "192.0.2.1");
        var e = await Assert.ThrowsAnyAsync<IscsiLoginException>(() => bed.LoginAsync());
        output.WriteLine($"{e.GetType().Name}: {e.Message}");
        // tgtd hides targets an initiator may not use: it answers "target not found" (0x0203) rather than 0x0202.
        Assert.True(e is TargetNotFoundException or AuthorizationFailedException, e.GetType().Name + ": " + e.Message);
    }

    [Fact]
    public async Task Nothing_listening_is_a_transport_error()
    {
        await using var bed = await TgtdTestBed.StartAsync(output);
        var closedPort = IserBlockd.TestSupport.FreePort.Next();
        var e = await Assert.ThrowsAsync<IscsiTransportException>(() => bed.LoginAsync(bed.Options() with { Portals = [new IscsiPortal("127.0.0.1", closedPort)] }));
        Assert.Contains("connection refused", e.Message);
    }
}
