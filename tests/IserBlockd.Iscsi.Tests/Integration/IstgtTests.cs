using IserBlockd.Iscsi.Discovery;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.TestSupport.Istgt;
using IserBlockd.Transport.Tcp;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>A second target: istgt (started here on a free port) as tgtd — discovery, login, inquiry, capacity, data.</summary>
[Trait("Category", "RealPeer")]
public sealed class IstgtTests(ITestOutputHelper output)
{
    private const string InitiatorName = "iqn.2026-11.io.iserblockd.test:initiator";

    [Fact]
    public async Task Discover_log_in_read_capacity_and_move_data()
    {
        await using var istgt = await IstgtServer.StartAsync();
        var logs = new TestLoggerFactory(output);
        var targets = await SendTargetsDiscovery.DiscoverAsync(new TcpIscsiTransport(), new IscsiSessionOptions
        {
            Portals = [IscsiPortal.Parse(istgt.Portal)],
            InitiatorName = InitiatorName,
        }, logs);
        Assert.Contains(targets, t => t.Name == istgt.TargetName);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var session = await IscsiSession.LoginAsync(new TcpIscsiTransport(), new IscsiSessionOptions
        {
            Portals = [IscsiPortal.Parse(istgt.Portal)],
            TargetName = istgt.TargetName,
            InitiatorName = InitiatorName,
            CommandTimeout = TimeSpan.FromSeconds(10),
        }, logs, timeout.Token);
        var lun = await session.OpenLunAsync(0, timeout.Token);
        output.WriteLine($"{lun.Inquiry.Vendor} {lun.Inquiry.Product}: {lun.BlockCount} blocks of {lun.BlockSize}");
        Assert.Equal(64UL << 20, lun.SizeBytes);
        var offset = 0L;
        for (var size = 4096; size <= 1 << 20; size *= 2)
        {
            var data = new byte[size];
            Random.Shared.NextBytes(data);
            await lun.WriteAtAsync(offset, data, fua: size == 8192, timeout.Token);
            var back = new byte[size];
            await lun.ReadAtAsync(offset, back, timeout.Token);
            Assert.Equal(data, back);
            offset += size;
        }
        await lun.SynchronizeCacheAsync(timeout.Token);
        Assert.Equal(0, session.Counters.CommandTimeouts);
        await session.LogoutAsync(timeout.Token);
    }
}
