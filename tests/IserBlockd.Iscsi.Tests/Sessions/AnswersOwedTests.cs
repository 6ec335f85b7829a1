using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Sessions;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Sessions;

/// <summary>The count of answers owed that the receive loop gives its transport before each wait (what TCP's receive
/// coalescing acts on): true on every way a command leaves the connection, and 0 while a write waits for an R2T.</summary>
public sealed class AnswersOwedTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_receive_loop_counts_down_the_answers_still_owed_to_zero()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        var connection = bed.Transport.Connections.Single();
        bed.Target.HoldCommands = true;
        var reads = Enumerable.Range(0, 20).Select(i => lun.ReadAsync((ulong)i, new byte[512]).AsTask()).ToArray();
        await Wait.Until(() => { lock (bed.Target.LastConnection.Held) return bed.Target.LastConnection.Held.Count == 20; });
        lock (connection.AnswersExpected) connection.AnswersExpected.Clear();

        await bed.Target.LastConnection.ReleaseHeldAsync();
        await Task.WhenAll(reads).WaitAsync(TimeSpan.FromSeconds(10));

        // One answer at a time: before each following wait the loop owes one fewer, down to none, and the bytes of
        // what is owed (a 48-byte header and 512 bytes of data each).
        await Wait.Until(() => { lock (connection.AnswersExpected) return connection.AnswersExpected.LastOrDefault((-1, -1)) == (0, 0); }, "the last count to be 0");
        (int, long)[] seen;
        lock (connection.AnswersExpected) seen = [.. connection.AnswersExpected];
        Assert.Equal(Enumerable.Range(0, 20).Reverse().Select(n => (n, n * 560L)), seen);
    }

    [Fact]
    public void Counts_sent_commands_and_says_none_while_a_write_waits_for_an_R2T()
    {
        // Immediate data up to 8 KiB, then R2Ts: a 64 KiB write waits for the target before its answer can come.
        var owed = new AnswersOwed(new NegotiatedParameters { InitialR2T = true, ImmediateData = true, FirstBurstLength = 65536, MaxSendDataSegmentLength = 8192 });
        var read = NewTask(ScsiDataDirection.Read, 4096);
        var smallWrite = NewTask(ScsiDataDirection.Write, 8192);
        var largeWrite = NewTask(ScsiDataDirection.Write, 65536);

        owed.Sent(read);
        owed.Sent(smallWrite);
        Assert.Equal(2, owed.AnswersOnly);
        Assert.Equal(48 + 4096 + 48, owed.Bytes);
        owed.Sent(largeWrite);
        Assert.Equal(0, owed.AnswersOnly);
        owed.Left(largeWrite);
        Assert.Equal(2, owed.AnswersOnly);
        Assert.False(largeWrite.AwaitsR2T);

        // Data that landed is no longer owed, and a task that leaves takes only what was still owed for it.
        owed.Landed(1024);
        read.DataInBytes += 1024;
        Assert.Equal(48 + 3072 + 48, owed.Bytes);
        owed.Left(read);
        owed.Left(smallWrite);
        Assert.Equal(0, owed.AnswersOnly);
        Assert.Equal(0, owed.Bytes);

        // Without R2Ts (InitialR2T=No) the first burst goes unsolicited: a write within it owes only its answer.
        var unsolicited = new AnswersOwed(new NegotiatedParameters { InitialR2T = false, ImmediateData = false, FirstBurstLength = 65536 });
        unsolicited.Sent(largeWrite);
        Assert.Equal(1, unsolicited.AnswersOnly);
    }

    private static ScsiTask NewTask(ScsiDataDirection direction, int length)
    {
        var task = new ScsiTaskPool(1).Rent();
        task.Direction = direction;
        task.Buffer = new byte[length];
        return task;
    }
}
