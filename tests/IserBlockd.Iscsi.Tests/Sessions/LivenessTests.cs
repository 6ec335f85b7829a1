using IserBlockd.Iscsi.Pdu;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Sessions;

/// <summary>Liveness from traffic: any PDU received is life; a ping only after silence; dead only when nothing arrives.</summary>
public sealed class LivenessTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Traffic_counts_as_life_and_a_silent_target_is_dead()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        await lun.ReadAsync(0, new byte[512]);
        Assert.True(await session.ProbeLivenessAsync(TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(300)));
        Assert.Equal(0, bed.CountReceived(p => p.Opcode == IscsiOpcode.NopOut)); // traffic just arrived: no ping

        Assert.True(await session.ProbeLivenessAsync(TimeSpan.Zero, TimeSpan.FromSeconds(5)));
        Assert.Equal(1, bed.CountReceived(p => p.Opcode == IscsiOpcode.NopOut));

        // The target stops answering pings but other PDUs keep arriving: still alive.
        bed.Target.Intercept = (_, pdu) => pdu.Opcode == IscsiOpcode.NopOut;
        using var stop = new CancellationTokenSource();
        var traffic = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested) { await lun.ReadAsync(0, new byte[512]); await Task.Delay(20); }
        });
        var probe = session.ProbeLivenessAsync(TimeSpan.Zero, TimeSpan.FromSeconds(2));
        await Task.Delay(5000); // more than two timeouts' worth of unanswered ping, with reads answered all along
        Assert.False(probe.IsCompleted);
        await stop.CancelAsync();
        await traffic;
        Assert.False(await probe.WaitAsync(TimeSpan.FromSeconds(10))); // traffic stopped: the ping is still unanswered

    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_ping_goes_out_beside_a_writer_the_transport_holds_where_the_transport_allows(bool concurrentPing)
    {
        var bed = new FakeTargetBed(output, t => t.UnitAttentionFirst = false);
        bed.Transport.Capabilities = concurrentPing ? IserBlockd.Iscsi.ConnectionPort.IscsiTransportCapabilities.ConcurrentPing : 0;
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        var hold = new TaskCompletionSource();
        bed.Transport.Connections[^1].HoldCommands = hold;
        var read = lun.ReadAsync(0, new byte[512]).AsTask(); // the writer now waits inside the transport's send
        await Task.Delay(100);
        var ping = session.PingAsync();
        if (concurrentPing)
            await ping.WaitAsync(TimeSpan.FromSeconds(10)); // answered while the writer still waits
        else
        {
            await Task.Delay(300);
            Assert.False(ping.IsCompleted); // queued behind the writer
        }
        Assert.False(read.IsCompleted);
        hold.SetResult();
        await read.WaitAsync(TimeSpan.FromSeconds(10));
        await ping.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
