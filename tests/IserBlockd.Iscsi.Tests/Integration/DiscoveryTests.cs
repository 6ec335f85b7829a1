using IserBlockd.Iscsi.Discovery;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.TestSupport.Tgtd;
using IserBlockd.Transport.Tcp;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>SendTargets discovery against tgtd over IPv4 and IPv6, including text continuation.</summary>
[Trait("Category", "RealPeer")]
public sealed class DiscoveryTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Lists_every_target_with_its_portal()
    {
        await using var tgtd = await TgtdServer.StartAsync();
        var names = new[] { "iqn.2026-11.io.iserblockd.test:alpha", "iqn.2026-11.io.iserblockd.test:beta", "iqn.2026-11.io.iserblockd.test:gamma" };
        foreach (var name in names)
        {
            var t = await tgtd.CreateTargetAsync(name);
            await t.AddLunAsync(1, 1 << 20);
            await t.BindAsync();
        }
        var targets = await SendTargetsDiscovery.DiscoverAsync(new TcpIscsiTransport(), new IscsiSessionOptions
        {
            Portals = [IscsiPortal.Parse(tgtd.Portal)],
            InitiatorName = TgtdTestBed.InitiatorName,
        }, new TestLoggerFactory(output));
        Assert.Equal(names, targets.Select(t => t.Name).Order());
        foreach (var t in targets)
        {
            var portal = Assert.Single(t.Portals);
            Assert.Equal("127.0.0.1", portal.Host);
            Assert.Equal(tgtd.Port, portal.Port);
            Assert.Equal(1, portal.PortalGroupTag);
        }
    }

    [Fact]
    public async Task Long_answers_arrive_in_continued_text_responses()
    {
        await using var tgtd = await TgtdServer.StartAsync();
        var names = Enumerable.Range(0, 40).Select(i => $"iqn.2026-11.io.iserblockd.test:a-rather-long-target-name-to-fill-pdus-{i:d3}").ToArray();
        foreach (var name in names) await (await tgtd.CreateTargetAsync(name)).BindAsync();
        // We accept only 512-byte segments, so tgtd must split its ~3 KiB answer (F=0, TTT set) and we must ask for more.
        var logs = new TestLoggerFactory(output);
        await using var session = await IscsiSession.LoginAsync(new TcpIscsiTransport(), new IscsiSessionOptions
        {
            Portals = [IscsiPortal.Parse(tgtd.Portal)],
            InitiatorName = TgtdTestBed.InitiatorName,
            SessionType = IscsiSessionType.Discovery,
            Operational = new OperationalOptions { MaxRecvDataSegmentLength = 512 },
        }, logs);
        var targets = await session.SendTargetsAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(names.Order(), targets.Select(t => t.Name).Order());
        await session.LogoutAsync();
    }

    [Fact]
    public async Task Ipv6_portal_is_reported_in_brackets()
    {
        await using var tgtd = await TgtdServer.StartAsync(new TgtdOptions { Address = "::1" });
        var t = await tgtd.CreateTargetAsync("iqn.2026-11.io.iserblockd.test:six");
        await t.AddLunAsync(1, 1 << 20);
        await t.BindAsync();
        var targets = await SendTargetsDiscovery.DiscoverAsync(new TcpIscsiTransport(), new IscsiSessionOptions
        {
            Portals = [IscsiPortal.Parse(tgtd.Portal)],
            InitiatorName = TgtdTestBed.InitiatorName,
        }, new TestLoggerFactory(output));
        var portal = Assert.Single(Assert.Single(targets).Portals);
        Assert.Equal("::1", portal.Host);
        Assert.Equal($"[::1]:{tgtd.Port},1", portal.ToString());

        // And a normal session over IPv6 works too.
        await using var session = await IscsiSession.LoginAsync(new TcpIscsiTransport(), new IscsiSessionOptions
        {
            Portals = [portal],
            TargetName = t.Name,
            InitiatorName = TgtdTestBed.InitiatorName,
        });
        var lun = await session.OpenLunAsync(1);
        Assert.Equal(1UL << 20, lun.SizeBytes);
    }

    [Fact]
    public async Task Report_luns_lists_the_target_luns()
    {
        await using var tgtd = await TgtdServer.StartAsync();
        var t = await tgtd.CreateTargetAsync("iqn.2026-11.io.iserblockd.test:multi");
        await t.AddLunAsync(1, 1 << 20);
        await t.AddLunAsync(2, 2 << 20, 4096);
        await t.BindAsync();
        await using var session = await IscsiSession.LoginAsync(new TcpIscsiTransport(), new IscsiSessionOptions
        {
            Portals = [IscsiPortal.Parse(tgtd.Portal)],
            TargetName = t.Name,
            InitiatorName = TgtdTestBed.InitiatorName,
        });
        var luns = await session.ReportLunsAsync();
        Assert.Equal(new ulong[] { 0, 1, 2 }, luns.Order());
        var lun2 = await session.OpenLunAsync(2);
        Assert.Equal(4096u, lun2.BlockSize);
    }
}
