using System.Diagnostics;
using System.Net;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>
/// A real tgtd behind <see cref="TcpFaultProxy"/> that loses or delays one SCSI command: the command times out, is
/// aborted (or its LU reset, or the session reinstated), and is re-issued only once its first instance can no
/// longer execute, so the data on the target is what the client wrote last.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class CommandTimeoutTests(ITestOutputHelper output)
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Bound = CommandTimeout + TimeSpan.FromSeconds(30);

    private static async Task<(TgtdTestBed Bed, TcpFaultProxy Proxy, IscsiSession Session, ScsiLun Lun)> StartAsync(ITestOutputHelper output)
    {
        var bed = await TgtdTestBed.StartAsync(output);
        var proxy = new TcpFaultProxy(new IPEndPoint(IPAddress.Loopback, bed.Server.Port));
        var session = await bed.LoginAsync(bed.Options() with
        {
            Portals = [new IscsiPortal("127.0.0.1", proxy.Port)],
            RetainCommandsOnConnectionLoss = true,
            CommandTimeout = CommandTimeout,
            AbortTimeout = TimeSpan.FromSeconds(2),
            ResetTimeout = TimeSpan.FromSeconds(2),
        });
        // The owner's part (the daemon's NodeSession): reinstate after a loss.
        session.ConnectionLost += (_, _) => _ = Task.Run(async () =>
        {
            for (var i = 0; i < 20; i++)
            {
                try { await session.ReinstateAsync(); return; }
                catch (Exception) { await Task.Delay(200); }
            }
        });
        var lun = await session.OpenLunAsync(1);
        return (bed, proxy, session, lun);
    }

    private static async Task StopAsync(TgtdTestBed bed, TcpFaultProxy proxy, IscsiSession session)
    {
        await session.DisposeAsync();
        await proxy.DisposeAsync();
        await bed.DisposeAsync();
    }

    private void Report(IscsiSession session, Stopwatch watch)
    {
        var c = session.Counters;
        output.WriteLine($"done after {watch.Elapsed.TotalSeconds:0.0} s: timeouts {c.CommandTimeouts}, aborts {c.Aborts}, LU resets {c.LunResets}, " +
            $"dropped connections {c.ConnectionDrops}, reinstatements {c.Reinstatements}, re-issued {c.CommandsReissued}");
    }

    [Fact]
    public async Task A_swallowed_read_completes_with_the_right_data()
    {
        var (bed, proxy, session, lun) = await StartAsync(output);
        try
        {
            var data = new byte[64 * 1024];
            Random.Shared.NextBytes(data);
            await lun.WriteAsync(256, data);
            var swallowed = proxy.SwallowScsiCommand(1, ScsiOpcode.Read10, ScsiOpcode.Read16);
            var watch = Stopwatch.StartNew();
            var back = new byte[data.Length];
            await lun.ReadAsync(256, back).AsTask().WaitAsync(Bound);
            Assert.True(swallowed.IsCompleted);
            Report(session, watch);
            Assert.Equal(data, back);
            Assert.True(session.Counters.CommandTimeouts >= 1);
        }
        finally
        {
            await StopAsync(bed, proxy, session);
        }
    }

    [Fact]
    public async Task A_swallowed_write_completes_and_lands()
    {
        var (bed, proxy, session, lun) = await StartAsync(output);
        try
        {
            var data = new byte[32 * 1024];
            Random.Shared.NextBytes(data);
            var swallowed = proxy.SwallowScsiCommand(1, ScsiOpcode.Write10, ScsiOpcode.Write16);
            var watch = Stopwatch.StartNew();
            await lun.WriteAsync(512, data).AsTask().WaitAsync(Bound);
            Assert.True(swallowed.IsCompleted);
            Report(session, watch);
            var back = new byte[data.Length];
            await lun.ReadAsync(512, back);
            Assert.Equal(data, back);
        }
        finally
        {
            await StopAsync(bed, proxy, session);
        }
    }

    [Fact]
    public async Task A_late_write_never_lands_on_a_newer_one()
    {
        var (bed, proxy, session, lun) = await StartAsync(output);
        try
        {
            var a = new byte[16 * 1024];
            var b = new byte[16 * 1024];
            Array.Fill(a, (byte)0xaa);
            Array.Fill(b, (byte)0xbb);
            var held = proxy.HoldScsiCommand(1, ScsiOpcode.Write10, ScsiOpcode.Write16);
            var watch = Stopwatch.StartNew();
            await lun.WriteAsync(1024, a).AsTask().WaitAsync(Bound);
            Assert.True(held.IsCompleted);
            Report(session, watch);
            await lun.WriteAsync(1024, b);
            var delivered = await proxy.DeliverHeldAsync();
            output.WriteLine($"the held WRITE of A was {(delivered ? "delivered to tgtd on its old connection" : "not deliverable (its connection is closed)")}");
            await Task.Delay(1000); // give tgtd time to execute it, if it ever would
            var back = new byte[b.Length];
            await lun.ReadAsync(1024, back);
            Assert.Equal(b, back);
        }
        finally
        {
            await StopAsync(bed, proxy, session);
        }
    }
}
