using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Sessions;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Sessions;

/// <summary>The task lifecycle past a deadline, against the fake target: abort, re-issue, failure, reset.</summary>
public sealed class TaskTimeoutTests(ITestOutputHelper output)
{
    private static IscsiSessionOptions Short(FakeTargetBed bed) => bed.Options() with
    {
        CommandTimeout = TimeSpan.FromMilliseconds(500),
        AbortTimeout = TimeSpan.FromSeconds(1),
        ResetTimeout = TimeSpan.FromSeconds(1),
    };

    [Fact]
    public async Task A_held_block_read_is_aborted_and_reissued()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync(Short(bed));
        var lun = await session.OpenLunAsync(1);
        Random.Shared.NextBytes(bed.Target.Disk);
        // Held until the ABORT TASK arrives (which the fake target confirms), answered normally afterwards.
        bed.Target.Intercept = (_, pdu) =>
        {
            if (pdu.Opcode == IscsiOpcode.TaskManagementRequest) bed.Target.HoldCommands = false;
            return false;
        };
        bed.Target.HoldCommands = true;
        var read = new byte[4096];
        await lun.ReadAsync(4, read).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(bed.Target.Disk.AsSpan(4 * 512, 4096).ToArray(), read);
        Assert.Equal(1, session.Counters.CommandTimeouts);
        Assert.Equal(1, session.Counters.CommandsReissued);
        Assert.Equal(0, session.Counters.LunResets);
        Assert.Single(bed.Logs.Lines, l => l.Contains("timed out after 0.5 s; sending ABORT TASK"));
    }

    [Fact]
    public async Task A_raw_command_past_its_deadline_fails_with_a_timeout()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync(Short(bed));
        await session.OpenLunAsync(1);
        bed.Target.HoldCommands = true;
        var cdb = new byte[10];
        CdbBuilder.Read10(cdb, 0, 1);
        var e = await Assert.ThrowsAsync<IscsiCommandTimeoutException>(async () => await session.ExecuteAsync(1, cdb, ScsiDataDirection.Read, new byte[512]).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("READ(10) on LUN 1 timed out", e.Message);
        Assert.Equal(0, session.OutstandingCommands);
    }

    [Fact]
    public async Task An_abort_the_target_does_not_confirm_escalates_to_a_lun_reset_that_ends_every_task_of_the_lun()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync(Short(bed));
        var lun = await session.OpenLunAsync(1);
        // The target ignores ABORT TASK; it answers LOGICAL UNIT RESET and then answers commands again.
        bed.Target.Intercept = (connection, pdu) =>
        {
            if (pdu.Opcode != IscsiOpcode.TaskManagementRequest) return false;
            var tmf = TaskManagementRequestPdu.Read(pdu.Header);
            if (tmf.Function != TaskManagementFunction.LogicalUnitReset) return true;
            bed.Target.HoldCommands = false;
            lock (connection.Held) connection.Held.Clear();
            return false;
        };
        bed.Target.HoldCommands = true;
        var reads = Enumerable.Range(0, 3).Select(i => lun.ReadAsync((ulong)i, new byte[512]).AsTask()).ToArray();
        await Task.WhenAll(reads).WaitAsync(TimeSpan.FromSeconds(15));
        // The escalation logs and counts once the re-issued commands have answered, which may be just after
        // the reads see their data.
        await Wait.Until(() => bed.Logs.Lines.Any(l => l.Contains("LOGICAL UNIT RESET done; 3 command(s) re-issued")), "the reset's log line");
        Assert.Equal(1, session.Counters.LunResets);
        Assert.Equal(3, session.Counters.CommandsReissued);
    }
}
