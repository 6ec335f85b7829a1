using IserBlockd.Iscsi.Sessions;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>
/// ERL0 recovery: tgtd is killed (SIGKILL) with commands in flight and restarted on the same backing file;
/// the session is reinstated with the same ISID and every retained command completes.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class ReinstatementTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Commands_survive_a_target_crash_and_restart()
    {
        await using var bed = await TgtdTestBed.StartAsync(output);
        var lost = new TaskCompletionSource<IscsiConnectionLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var session = await bed.LoginAsync(bed.Options() with { RetainCommandsOnConnectionLoss = true });
        session.ConnectionLost += (_, e) => lost.TrySetResult(e);
        var lun = await session.OpenLunAsync(1);
        var isid = session.Isid;

        const int commands = 96;
        const int size = 16384;
        var blocks = size / 512;
        var data = Enumerable.Range(0, commands).Select(_ => { var b = new byte[size]; Random.Shared.NextBytes(b); return b; }).ToArray();
        var writes = Enumerable.Range(0, commands).Select(i => lun.WriteAsync((ulong)(i * blocks), data[i]).AsTask()).ToArray();
        await bed.Server.KillAsync();

        var args = await lost.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(args.CommandsRetained || writes.All(w => w.IsCompletedSuccessfully));
        Assert.Equal(IscsiSessionState.ConnectionLost, session.State);
        output.WriteLine($"connection lost: {args.Reason.Message}; {args.OutstandingCommands} commands retained");

        // Submitted while disconnected: queued, not failed.
        var late = new byte[size];
        Random.Shared.NextBytes(late);
        var lateWrite = lun.WriteAsync((ulong)(commands * blocks), late).AsTask();
        Assert.False(lateWrite.IsCompleted);

        await bed.Server.RestartAsync();
        await session.ReinstateAsync();
        Assert.Equal(IscsiSessionState.LoggedIn, session.State);
        Assert.Equal(isid, session.Isid);
        await Task.WhenAll(writes).WaitAsync(TimeSpan.FromSeconds(60));
        await lateWrite.WaitAsync(TimeSpan.FromSeconds(60));

        for (var i = 0; i < commands; i++)
        {
            var back = new byte[size];
            await lun.ReadAsync((ulong)(i * blocks), back);
            Assert.True(data[i].AsSpan().SequenceEqual(back), $"write {i} was lost");
        }
        var lateBack = new byte[size];
        await lun.ReadAsync((ulong)(commands * blocks), lateBack);
        Assert.Equal(late, lateBack);
        Assert.Equal(1, session.Counters.Reinstatements);
        Assert.Single(await bed.Target.ListSessionsAsync());
    }

    [Fact]
    public async Task Without_retention_commands_fail_with_connection_lost()
    {
        await using var bed = await TgtdTestBed.StartAsync(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        await bed.Server.KillAsync();
        var e = await Assert.ThrowsAnyAsync<IscsiException>(async () =>
        {
            for (var i = 0; i < 100; i++) await lun.ReadAsync(0, new byte[512]);
        });
        Assert.True(e is IscsiConnectionLostException, e.GetType().Name + ": " + e.Message);
        await Wait.Until(() => bed.Logs.Lines.Any(l => l.StartsWith("Error: iSCSI connection to", StringComparison.Ordinal)), "the log line"); // logged after the awaited outcome
        await bed.Server.RestartAsync();
        await session.ReinstateAsync();
        await lun.ReadAsync(0, new byte[512]);
    }
}
