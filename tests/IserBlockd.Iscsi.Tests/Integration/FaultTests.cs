using System.Net;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>Faults between us and a real tgtd, through a TCP proxy: corrupted bytes, a cut connection.</summary>
[Trait("Category", "RealPeer")]
public sealed class FaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_corrupted_byte_is_caught_by_the_digests()
    {
        await using var bed = await TgtdTestBed.StartAsync(output, configure: async t =>
        {
            await t.SetParameterAsync("HeaderDigest", "CRC32C");
            await t.SetParameterAsync("DataDigest", "CRC32C");
        });
        await using var proxy = new TcpFaultProxy(new IPEndPoint(IPAddress.Loopback, bed.Server.Port)) { HeaderDigest = true, DataDigest = true };
        var options = bed.Options(new OperationalOptions { HeaderDigest = [DigestType.Crc32C], DataDigest = [DigestType.Crc32C] }) with
        {
            Portals = [new IscsiPortal("127.0.0.1", proxy.Port)],
        };
        await using var session = await bed.LoginAsync(options);
        var lun = await session.OpenLunAsync(1);
        var data = new byte[256 * 1024];
        Random.Shared.NextBytes(data);
        await lun.WriteAsync(0, data);

        proxy.CorruptServerByte(10_000); // inside the Data-In of the next read
        var e = await Assert.ThrowsAsync<IscsiConnectionLostException>(async () => await lun.ReadAsync(0, new byte[data.Length]));
        output.WriteLine(e.Message);
        Assert.Contains("digest mismatch", e.Message);
        await Wait.Until(() => bed.Logs.Lines.Any(l => l.StartsWith("Error: iSCSI connection to", StringComparison.Ordinal) && l.Contains("digest mismatch")), "the log line"); // logged after the awaited outcome

        // The session can be reinstated and the data is intact on the target.
        await session.ReinstateAsync();
        var back = new byte[data.Length];
        await lun.ReadAsync(0, back);
        Assert.Equal(data, back);
    }

    [Fact]
    public async Task A_cut_connection_is_reported_and_recovered()
    {
        await using var bed = await TgtdTestBed.StartAsync(output);
        await using var proxy = new TcpFaultProxy(new IPEndPoint(IPAddress.Loopback, bed.Server.Port));
        var lost = new TaskCompletionSource<IscsiConnectionLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var session = await bed.LoginAsync(bed.Options() with { Portals = [new IscsiPortal("127.0.0.1", proxy.Port)], RetainCommandsOnConnectionLoss = true });
        session.ConnectionLost += (_, e) => lost.TrySetResult(e);
        var lun = await session.OpenLunAsync(1);
        proxy.Stalled = true;
        var data = new byte[64 * 1024];
        Random.Shared.NextBytes(data);
        var write = lun.WriteAsync(100, data).AsTask();
        await Task.Delay(100);
        proxy.CutAll();
        proxy.Stalled = false;
        var args = await lost.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(args.CommandsRetained);
        Assert.False(write.IsCompleted);
        await session.ReinstateAsync();
        await write.WaitAsync(TimeSpan.FromSeconds(30));
        var back = new byte[data.Length];
        await lun.ReadAsync(100, back);
        Assert.Equal(data, back);
    }
}
