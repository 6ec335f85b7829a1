using IserBlockd.Iscsi.Sessions;
using IserBlockd.TestSupport.Tgtd;
using IserBlockd.Transport.Tcp;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

public sealed class TgtdSmokeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Login_inquiry_write_read()
    {
        await using var tgtd = await TgtdServer.StartAsync();
        var target = await tgtd.CreateTargetAsync("iqn.2026-11.io.iserblockd.test:smoke");
        await target.AddLunAsync(1, 64 << 20);
        await target.BindAsync();
        var logs = new TestLoggerFactory(output);
        await using var session = await IscsiSession.LoginAsync(new TcpIscsiTransport(), new IscsiSessionOptions
        {
            Portals = [IscsiPortal.Parse(tgtd.Portal)],
            TargetName = target.Name,
            InitiatorName = "iqn.2026-11.io.iserblockd.test:initiator",
        }, logs);
        var lun = await session.OpenLunAsync(1);
        Assert.Equal(512u, lun.BlockSize);
        var data = new byte[65536];
        Random.Shared.NextBytes(data);
        await lun.WriteAsync(8, data);
        var back = new byte[65536];
        await lun.ReadAsync(8, back);
        Assert.Equal(data, back);
    }
}
