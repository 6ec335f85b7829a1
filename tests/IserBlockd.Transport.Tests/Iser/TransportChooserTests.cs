using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Discovery;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Rdma;
using IserBlockd.TestSupport.Tgtd;
using IserBlockd.Transport.Iser;
using IserBlockd.Transport.Selection;
using IserBlockd.Transport.Tcp;

namespace IserBlockd.Transport.Tests.Iser;

/// <summary>
/// tcp/iser/auto on the build machine, which has no RDMA device: auto must fall back to TCP with the reason, iser must
/// fail with a clear transport error, against a real tgtd on loopback.
/// </summary>
public class TransportChooserTests
{
    [Theory]
    [InlineData("tcp", IscsiTransportKind.Tcp)]
    [InlineData("ISER", IscsiTransportKind.Iser)]
    [InlineData(" auto ", IscsiTransportKind.Auto)]
    public void Names_parse(string text, IscsiTransportKind kind)
    {
        Assert.True(IscsiTransportKindNames.TryParse(text, out var parsed));
        Assert.Equal(kind, parsed);
        Assert.Equal(text.Trim().ToLowerInvariant(), parsed.ToName());
    }

    [Fact]
    public void Unknown_names_do_not_parse() => Assert.False(IscsiTransportKindNames.TryParse("rdma", out _));

    [Fact]
    public async Task Explicit_kinds_are_taken_as_configured()
    {
        var chooser = new TransportChooser();
        var tcp = await chooser.ChooseAsync(IscsiTransportKind.Tcp, new IscsiPortal("127.0.0.1"));
        Assert.IsType<TcpIscsiTransport>(tcp.Transport);
        Assert.Equal("transport tcp as configured", tcp.Reason);
        var iser = await chooser.ChooseAsync(IscsiTransportKind.Iser, new IscsiPortal("127.0.0.1"));
        Assert.IsType<IserTransport>(iser.Transport);
        Assert.Same(iser.Transport, iser.Iser);
    }

    [Fact]
    public async Task Auto_without_an_RDMA_route_takes_TCP_and_says_why()
    {
        var choice = await new TransportChooser().ChooseAsync(IscsiTransportKind.Auto, new IscsiPortal("127.0.0.1", 3260));
        Assert.Equal("tcp", choice.Name);
        Assert.StartsWith("transport auto: TCP (", choice.Reason);
        // Either no RDMA at all on this host, or none that routes to loopback: both are said plainly.
        Assert.Matches("no RDMA|RDMA route|rdma", choice.Reason);
    }

    [Fact]
    [Trait("Category", "RealPeer")]
    public async Task Auto_logs_in_over_TCP_to_a_real_target_and_iser_fails_clearly()
    {
        await using var tgtd = await TgtdServer.StartAsync();
        var target = await tgtd.CreateTargetAsync("iqn.2024-01.test.iserblockd:chooser");
        await target.AddLunAsync(1, 8 << 20);
        await target.BindAsync();
        var options = new IscsiSessionOptions
        {
            Portals = [IscsiPortal.Parse(tgtd.Portal)],
            TargetName = target.Name,
            InitiatorName = "iqn.2024-01.test.iserblockd:chooser-test",
            LoginTimeout = TimeSpan.FromSeconds(10),
        };
        var chooser = new TransportChooser(devices: new IserDeviceRegistry());

        var (session, choice) = await chooser.LoginAsync(IscsiTransportKind.Auto, options);
        await using (session)
        {
            Assert.Equal("tcp", choice.Name);
            Assert.Equal("tcp", session.TransportName);
            var lun = await session.OpenLunAsync(1);
            Assert.Equal(8UL << 20, lun.SizeBytes);
            await session.LogoutAsync();
        }

        var (targets, discoveryChoice) = await chooser.DiscoverAsync(IscsiTransportKind.Auto,
            new IscsiSessionOptions { Portals = [IscsiPortal.Parse(tgtd.Portal)], InitiatorName = options.InitiatorName });
        Assert.Equal("tcp", discoveryChoice.Name);
        Assert.Contains(targets, t => t.Name == target.Name);

        var e = await Assert.ThrowsAsync<IscsiTransportException>(() => chooser.LoginAsync(IscsiTransportKind.Iser, options));
        Assert.Contains("iSER", e.Message);
        Assert.True(RdmaDiagnostics.LiveNativeObjects == 0, $"{RdmaDiagnostics.LiveNativeObjects} rdma-core objects left after a failed iSER connect");
    }
}
