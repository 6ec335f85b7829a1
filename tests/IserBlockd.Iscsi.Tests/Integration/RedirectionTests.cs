using IserBlockd.TestSupport.Tgtd;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>Target redirection (login status 0x0101) followed to the portal tgtd names.</summary>
[Trait("Category", "RealPeer")]
public sealed class RedirectionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Login_follows_a_temporary_redirection()
    {
        // The real target lives on tgtd B ([::1]); tgtd A (127.0.0.1) has the same name but redirects there.
        await using var b = await TgtdServer.StartAsync(new TgtdOptions { Address = "::1" });
        var real = await b.CreateTargetAsync("iqn.2026-11.io.iserblockd.test:moved");
        await real.AddLunAsync(1, 3 << 20);
        await real.BindAsync();

        await using var bed = await TgtdTestBed.StartAsync(output, targetName: real.Name,
            configure: t => t.RedirectAsync("[::1]", b.Port));
        await using var session = await bed.LoginAsync();
        Assert.Equal("::1", session.Portal.Host);
        Assert.Equal(b.Port, session.Portal.Port);
        var lun = await session.OpenLunAsync(1);
        Assert.Equal(3UL << 20, lun.SizeBytes); // B's LUN, not A's 64 MiB one
        Assert.Single(await real.ListSessionsAsync());
        Assert.Empty(await bed.Target.ListSessionsAsync());
        Assert.Contains(bed.Logs.Lines, l => l.Contains("moved temporarily"));
    }
}
