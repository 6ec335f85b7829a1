using System.Diagnostics;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Iscsi.Tests.Fakes;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Sessions;

/// <summary>
/// Statuses and unit attentions handled as the Linux midlayer and sd do: transient statuses requeued with backoff,
/// RECOVERED ERROR as success, short transfers as errors, and unit attentions that act on the LUN.
/// </summary>
public sealed class StatusHandlingTests(ITestOutputHelper output)
{
    private static bool IsReadOrWrite(RawPdu pdu) => pdu.Opcode == IscsiOpcode.ScsiCommand
        && pdu.Header[32] is ScsiOpcode.Read10 or ScsiOpcode.Read16 or ScsiOpcode.Write10 or ScsiOpcode.Write16;

    private static bool IsRead(RawPdu pdu) => pdu.Opcode == IscsiOpcode.ScsiCommand && pdu.Header[32] is ScsiOpcode.Read10 or ScsiOpcode.Read16;

    private static byte[] Sense(SenseKey key, byte asc, byte ascq)
    {
        var sense = new byte[18];
        sense[0] = 0x70; sense[2] = (byte)key; sense[7] = 10; sense[12] = asc; sense[13] = ascq;
        return sense;
    }

    [Fact]
    public async Task Busy_and_task_set_full_for_five_seconds_reach_no_client()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        var data = new byte[4096];
        Random.Shared.NextBytes(data);
        var watch = Stopwatch.StartNew();
        var answers = 0;
        bed.Target.Intercept = (connection, pdu) =>
        {
            if (!IsReadOrWrite(pdu) || watch.Elapsed > TimeSpan.FromSeconds(5)) return false;
            connection.Advance(pdu.Header);
            _ = connection.SendResponseAsync(pdu.Itt, ++answers % 2 == 0 ? ScsiStatus.Busy : ScsiStatus.TaskSetFull, null, 0, false);
            return true;
        };
        await lun.WriteAsync(8, data);
        var back = new byte[data.Length];
        await lun.ReadAsync(8, back);
        output.WriteLine($"{answers} BUSY/TASK SET FULL answers, done after {watch.Elapsed.TotalSeconds:0.0} s");
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(5));
        Assert.True(answers >= 6);
        Assert.Equal(data, back);
    }

    [Fact]
    public async Task Recovered_error_is_success()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        Random.Shared.NextBytes(bed.Target.Disk);
        bed.Target.Intercept = (connection, pdu) =>
        {
            if (!IsRead(pdu)) return false;
            connection.Advance(pdu.Header);
            var length = (int)BasicHeaderSegment.U32(pdu.Header, 20);
            var lba = BasicHeaderSegment.U32(pdu.Header, 34);
            var payload = bed.Target.Disk.AsSpan((int)lba * 512, length).ToArray();
            _ = Task.Run(async () =>
            {
                await connection.SendAsync(RawPdu.Of(h => new DataInPdu
                {
                    Final = true, DataSegmentLength = length, InitiatorTaskTag = pdu.Itt, TargetTransferTag = BasicHeaderSegment.ReservedTag,
                    ExpCmdSN = connection.ExpCmdSN, MaxCmdSN = connection.MaxCmdSN,
                }.Write(h), payload));
                await connection.SendResponseAsync(pdu.Itt, ScsiStatus.CheckCondition, Sense(SenseKey.RecoveredError, 0x17, 0x01), 0, false);
            });
            return true;
        };
        var back = new byte[4096];
        await lun.ReadAsync(16, back);
        Assert.Equal(bed.Target.Disk.AsSpan(16 * 512, 4096).ToArray(), back);
        Assert.Equal(IscsiSessionState.LoggedIn, session.State);
    }

    [Fact]
    public async Task A_short_phase_collapsed_read_without_underflow_fails_the_read_alone()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        bed.Target.Intercept = (connection, pdu) =>
        {
            if (!IsRead(pdu)) return false;
            connection.Advance(pdu.Header);
            _ = connection.SendAsync(RawPdu.Of(h => new DataInPdu
            {
                Final = true, HasStatus = true, DataSegmentLength = 2048, InitiatorTaskTag = pdu.Itt, TargetTransferTag = BasicHeaderSegment.ReservedTag,
                StatSN = connection.NextStatSN(), ExpCmdSN = connection.ExpCmdSN, MaxCmdSN = connection.MaxCmdSN,
            }.Write(h), new byte[2048]));
            return true;
        };
        var e = await Assert.ThrowsAsync<ScsiCommandException>(async () => await lun.ReadAsync(0, new byte[4096]));
        Assert.Contains("short transfer: 2048 of 4096 bytes", e.Message);
        bed.Target.Intercept = null;
        await lun.ReadAsync(0, new byte[4096]);
        Assert.Equal(IscsiSessionState.LoggedIn, session.State);
    }

    /// <summary>Answers the next READ with CHECK CONDITION UNIT ATTENTION asc/ascq, after <paramref name="change"/> ran.</summary>
    private static void UnitAttentionOnNextRead(FakeTargetBed bed, byte asc, byte ascq, Action change)
    {
        var once = 0;
        bed.Target.Intercept = (connection, pdu) =>
        {
            if (!IsRead(pdu) || Interlocked.Exchange(ref once, 1) == 1) return false;
            connection.Advance(pdu.Header);
            change();
            _ = connection.SendCheckConditionAsync(pdu.Itt, SenseKey.UnitAttention, asc, ascq);
            return true;
        };
    }

    [Fact]
    public async Task Capacity_changed_reads_the_capacity_again_and_a_shrunk_lun_refuses_the_lost_blocks()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        Assert.Equal(2048UL, lun.BlockCount);
        var changed = new TaskCompletionSource<LunCapacityChangedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        lun.CapacityChanged += (_, e) => changed.TrySetResult(e);
        UnitAttentionOnNextRead(bed, 0x2a, 0x09, () => bed.Target.CapacityBlocks = 1024);
        await lun.ReadAsync(0, new byte[512]); // retried after the unit attention
        var e = await changed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(2048UL, e.Old.BlockCount);
        Assert.Equal(1024UL, e.Current.BlockCount);
        Assert.Equal(1024UL * 512, e.SizeBytes);
        var beyond = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await lun.ReadAsync(1500, new byte[512]));
        Assert.Contains("beyond the end of the LUN (1024 blocks)", beyond.Message);
        await lun.ReadAsync(1000, new byte[512]);
    }

    [Fact]
    public async Task A_changed_block_size_takes_the_lun_offline()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        UnitAttentionOnNextRead(bed, 0x2a, 0x09, () => bed.Target.BlockSize = 4096);
        await lun.ReadAsync(0, new byte[512]);
        await Wait.Until(() => lun.OfflineReason != null);
        var e = await Assert.ThrowsAsync<IscsiException>(async () => await lun.ReadAsync(0, new byte[512]));
        Assert.Contains("logical block size changed from 512 to 4096", e.Message);
        Assert.Equal(512U, lun.BlockSize);
    }

    [Fact]
    public async Task Mode_parameters_changed_is_announced()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        var announced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lun.ModeParametersChanged += (_, _) => announced.TrySetResult();
        UnitAttentionOnNextRead(bed, 0x2a, 0x01, () => { });
        await lun.ReadAsync(0, new byte[512]);
        await announced.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Reported_luns_changed_is_offered_as_a_rescan_hook()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        var rescan = new TaskCompletionSource<ScsiAsyncEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        session.ReportedLunsChanged += (_, e) => rescan.TrySetResult(e);
        UnitAttentionOnNextRead(bed, 0x3f, 0x0e, () => { });
        await lun.ReadAsync(0, new byte[512]);
        var e = await rescan.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1UL, e.Lun);
        await Wait.Until(() => bed.Logs.Lines.Any(l => l.Contains("reported LUNs data has changed")), "the log line"); // logged after the awaited outcome
    }

    [Fact]
    public async Task Back_to_back_r2ts_do_not_trip_max_outstanding_r2t()
    {
        var bed = new FakeTargetBed(output, t => t.MaxBurstLength = 4096);
        await using var session = await bed.LoginAsync(bed.Options(new() { InitialR2T = true, ImmediateData = false, MaxOutstandingR2T = 1 }));
        var lun = await session.OpenLunAsync(1);
        var data = new byte[512 * 1024];
        Random.Shared.NextBytes(data);
        for (var i = 0; i < 4; i++) await lun.WriteAsync(0, data);
        Assert.Equal(data, bed.Target.Disk.AsSpan(0, data.Length).ToArray());
        Assert.Equal(IscsiSessionState.LoggedIn, session.State);
        Assert.True(session.Counters.R2Ts >= 4 * 128);
    }
}
