using System.Buffers.Binary;
using System.Runtime.InteropServices;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Iscsi.Tests.Fakes;
using IserBlockd.Iscsi.ConnectionPort;
using Xunit.Abstractions;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Iscsi.Tests.Sessions;

/// <summary>Full feature phase behaviour against the fake target: windows, pings, rejects, async events, cancellation.</summary>
public sealed class SessionBehaviourTests(ITestOutputHelper output)
{
    private static bool IsCommand(RawPdu p) => p.Opcode == IscsiOpcode.ScsiCommand;

    [Fact]
    public async Task Commands_wait_for_the_command_window()
    {
        // A target never shrinks a window it granted (RFC 7143 §4.2.2.1), so this one grants 2 from the start.
        var bed = new FakeTargetBed(output, t => t.Window = 2);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        var before = bed.CountReceived(IsCommand);
        bed.Target.HoldCommands = true;
        var reads = Enumerable.Range(0, 6).Select(i => lun.ReadAsync((ulong)i, new byte[512]).AsTask()).ToArray();
        await Wait.Until(() => bed.Target.LastConnection.Held.Count == 2);
        await Task.Delay(100);
        Assert.Equal(before + 2, bed.CountReceived(IsCommand));
        Assert.All(reads, r => Assert.False(r.IsCompleted));

        bed.Target.Window = 16;
        bed.Target.HoldCommands = false;
        await bed.Target.LastConnection.ReleaseHeldAsync();
        await Task.WhenAll(reads).WaitAsync(TimeSpan.FromSeconds(10));

        // CmdSN of non-immediate commands is consecutive and in window order.
        List<uint> cmdSNs;
        lock (bed.Target.Received)
            cmdSNs = bed.Target.Received.Where(p => IsCommand(p) && !BasicHeaderSegment.IsImmediate(p.Header))
                .Select(p => BinaryPrimitives.ReadUInt32BigEndian(p.Header.AsSpan(24))).ToList();
        for (var i = 1; i < cmdSNs.Count; i++) Assert.Equal(cmdSNs[i - 1] + 1, cmdSNs[i]);
    }

    [Fact]
    public async Task Target_ping_is_answered_with_its_tag_and_data()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        var connection = bed.Target.LastConnection;
        await connection.SendAsync(RawPdu.Of(h => new NopInPdu
        {
            DataSegmentLength = 4,
            Lun = LunAddress.Encode(1),
            InitiatorTaskTag = BasicHeaderSegment.ReservedTag,
            TargetTransferTag = 0x5555,
            StatSN = connection.PeekStatSN,
            ExpCmdSN = connection.ExpCmdSN,
            MaxCmdSN = connection.MaxCmdSN,
        }.Write(h), "ping"u8.ToArray()));
        var reply = await bed.WaitForAsync(p => p.Opcode == IscsiOpcode.NopOut && BasicHeaderSegment.U32(p.Header, 20) == 0x5555);
        var nop = NopOutPdu.Read(reply.Header);
        Assert.True(nop.Immediate);
        Assert.Equal(BasicHeaderSegment.ReservedTag, nop.InitiatorTaskTag);
        Assert.Equal(LunAddress.Encode(1), nop.Lun);
        Assert.Equal("ping"u8.ToArray(), reply.Data);
        Assert.True(await session.PingAsync() < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_rejected_command_fails_alone()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        bed.Target.Intercept = (connection, pdu) =>
        {
            if (!IsCommand(pdu) || pdu.Header[32] is not (ScsiOpcode.SynchronizeCache10 or ScsiOpcode.SynchronizeCache16)) return false;
            _ = connection.SendAsync(RawPdu.Of(h => new RejectPdu
            {
                Reason = RejectReason.CommandNotSupported,
                DataSegmentLength = 48,
                StatSN = connection.NextStatSN(),
                ExpCmdSN = connection.ExpCmdSN,
                MaxCmdSN = connection.MaxCmdSN,
            }.Write(h), pdu.Header[..48]));
            return true;
        };
        var e = await Assert.ThrowsAsync<IscsiCommandRejectedException>(async () => await lun.SynchronizeCacheAsync());
        Assert.Equal(RejectReason.CommandNotSupported, e.Reason);
        await lun.ReadAsync(0, new byte[512]);
        Assert.Equal(IscsiSessionState.LoggedIn, session.State);
    }

    [Fact]
    public async Task Async_events_reach_the_owner()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync(bed.Options() with { RetainCommandsOnConnectionLoss = true });
        var asyncEvent = new TaskCompletionSource<ScsiAsyncEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        var lost = new TaskCompletionSource<IscsiConnectionLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        session.AsynchronousEvent += (_, e) => asyncEvent.TrySetResult(e);
        session.ConnectionLost += (_, e) => lost.TrySetResult(e);
        var connection = bed.Target.LastConnection;

        var sense = new byte[2 + 18];
        BinaryPrimitives.WriteUInt16BigEndian(sense, 18);
        sense[2] = 0x70; sense[4] = (byte)SenseKey.UnitAttention; sense[9] = 10; sense[14] = 0x2a; sense[15] = 0x09;
        await connection.SendAsync(RawPdu.Of(h => new AsyncMessagePdu
        {
            DataSegmentLength = sense.Length, Lun = LunAddress.Encode(1), Event = AsyncEvent.ScsiAsyncEvent,
            StatSN = connection.NextStatSN(), ExpCmdSN = connection.ExpCmdSN, MaxCmdSN = connection.MaxCmdSN,
        }.Write(h), sense));
        var e1 = await asyncEvent.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1UL, e1.Lun);
        Assert.Equal("capacity data has changed", e1.Sense!.AdditionalSenseText);

        await connection.SendAsync(RawPdu.Of(h => new AsyncMessagePdu
        {
            Event = AsyncEvent.LogoutRequested, Parameter3 = 5,
            StatSN = connection.NextStatSN(), ExpCmdSN = connection.ExpCmdSN, MaxCmdSN = connection.MaxCmdSN,
        }.Write(h)));
        var e2 = await lost.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("requested a logout", e2.Reason.Message);
        Assert.NotNull(await bed.WaitForAsync(p => p.Opcode == IscsiOpcode.LogoutRequest));
        Assert.Equal(IscsiSessionState.ConnectionLost, session.State);
    }

    [Fact]
    public async Task Cancelling_a_queued_command_drops_it_and_a_sent_one_is_aborted()
    {
        var bed = new FakeTargetBed(output, t => t.Window = 1);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        bed.Target.HoldCommands = true;
        using var sentCancel = new CancellationTokenSource();
        using var queuedCancel = new CancellationTokenSource();
        var sent = lun.ReadAsync(0, new byte[512], sentCancel.Token).AsTask();
        await Wait.Until(() => bed.Target.LastConnection.Held.Count == 1);
        var queued = lun.ReadAsync(1, new byte[512], queuedCancel.Token).AsTask();
        await Task.Delay(50);
        queuedCancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        sentCancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sent);
        var abort = await bed.WaitForAsync(p => p.Opcode == IscsiOpcode.TaskManagementRequest);
        Assert.Equal(TaskManagementFunction.AbortTask, TaskManagementRequestPdu.Read(abort.Header).Function);
        Assert.Empty(bed.Target.LastConnection.Held);
        Assert.Equal(0, session.OutstandingCommands);
        bed.Target.HoldCommands = false;
        await lun.ReadAsync(2, new byte[512]);
    }

    [Fact]
    public async Task Short_transfers_report_underflow()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        await session.OpenLunAsync(1);
        var buffer = new byte[255];
        var cdb = new byte[6];
        CdbBuilder.Inquiry(cdb, (ushort)buffer.Length);
        var result = await session.ExecuteAsync(1, cdb, ScsiDataDirection.Read, buffer);
        Assert.True(result.IsGood);
        Assert.True(result.Underflow);
        Assert.Equal(96, result.BytesTransferred);
        Assert.Equal("FAKE", InquiryData.Parse(buffer.AsSpan(0, result.BytesTransferred)).Vendor);
    }

    [Fact]
    public async Task Check_condition_carries_decoded_sense()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        var cdb = new byte[16];
        CdbBuilder.Read16(cdb, lun.BlockCount + 10, 1);
        var e = await Assert.ThrowsAsync<ScsiCommandException>(() => lun.ExecuteWithRetryAsync(cdb, ScsiDataDirection.Read, new byte[512]));
        Assert.Equal(SenseKey.IllegalRequest, e.Sense!.Key);
        Assert.Equal("READ(16) failed: CHECK CONDITION, ILLEGAL REQUEST: logical block address out of range (ASC/ASCQ 21/00)", e.Message);
        Assert.Equal(Errno.EINVAL, e.Errno);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public async Task Writes_follow_initial_r2t_and_immediate_data(bool initialR2T, bool immediateData)
    {
        var bed = new FakeTargetBed(output, t =>
        {
            t.InitialR2T = initialR2T;
            t.ImmediateData = immediateData;
            t.FirstBurstLength = 4096;
            t.MaxBurstLength = 8192;
            t.MaxRecvDataSegmentLength = 2048;
        });
        await using var session = await bed.LoginAsync(bed.Options(new OperationalOptions { InitialR2T = initialR2T, ImmediateData = immediateData }));
        Assert.Equal(2048, session.Parameters.MaxSendDataSegmentLength);
        var lun = await session.OpenLunAsync(1);
        var data = new byte[64 * 1024 + 512];
        Random.Shared.NextBytes(data);
        await lun.WriteAsync(3, data);
        Assert.Equal(data, bed.Target.Disk.AsSpan(3 * 512, data.Length).ToArray());

        var command = await bed.WaitForAsync(p => IsCommand(p) && p.Header[32] is ScsiOpcode.Write10 or ScsiOpcode.Write16);
        var pdu = ScsiCommandPdu.ReadHeader(command.Header);
        Assert.Equal(immediateData ? 2048 : 0, command.Data.Length);
        // F is set when no unsolicited Data-Out follows the command: with InitialR2T=No the first burst (4 KiB) is more than one PDU.
        Assert.Equal(initialR2T, pdu.Final);
        var unsolicited = bed.CountReceived(p => p.Opcode == IscsiOpcode.DataOut && BasicHeaderSegment.U32(p.Header, 20) == BasicHeaderSegment.ReservedTag);
        Assert.Equal(initialR2T ? 0 : (4096 - (immediateData ? 2048 : 0)) / 2048, unsolicited);
        Assert.True(bed.CountReceived(p => p.Opcode == IscsiOpcode.DataOut && p.Data.Length > 2048) == 0);
    }

    [Fact]
    public async Task Transport_that_places_data_gets_the_task_buffer_and_no_solicited_data()
    {
        var bed = new FakeTargetBed(output, t => t.UnitAttentionFirst = false);
        bed.Transport.Capabilities = IscsiTransportCapabilities.PlacesScsiData;
        await using var session = await bed.LoginAsync();
        var buffer = new byte[8192];
        Random.Shared.NextBytes(buffer);
        var cdb = new byte[16];
        CdbBuilder.Write16(cdb, 0, 16);
        // The fake target does not move data by RDMA: answer the command like an iSER target would, status only.
        bed.Target.Intercept = (connection, pdu) =>
        {
            if (!IsCommand(pdu) || pdu.Header[32] is not (ScsiOpcode.Write10 or ScsiOpcode.Write16)) return false;
            _ = connection.SendResponseAsync(pdu.Itt, ScsiStatus.Good, null, 0, false);
            return true;
        };
        var result = await session.ExecuteAsync(1, cdb, ScsiDataDirection.Write, buffer);
        Assert.True(result.IsGood);
        var connection = bed.Transport.Connections.Single();
        var task = Assert.Single(connection.TaskData);
        Assert.True(MemoryMarshal.TryGetArray<byte>(task.Buffer, out var segment));
        Assert.Same(buffer, segment.Array); // the caller's memory itself, never a copy
        Assert.Equal(8192, task.WriteLength);
        Assert.Equal(8192, task.UnsolicitedLength); // ImmediateData=Yes, InitialR2T=Yes: first burst limited by 8192
        Assert.Contains(task.InitiatorTaskTag, connection.Released);
        Assert.Equal(0, bed.CountReceived(p => p.Opcode == IscsiOpcode.DataOut));

        // A Data-In on such a transport is a protocol violation.
        bed.Target.Intercept = (c, pdu) =>
        {
            if (!IsCommand(pdu)) return false;
            _ = c.SendAsync(RawPdu.Of(h => new DataInPdu { Final = true, DataSegmentLength = 512, InitiatorTaskTag = pdu.Itt, ExpCmdSN = 1, MaxCmdSN = 99 }.Write(h), new byte[512]));
            return true;
        };
        CdbBuilder.Read16(cdb, 0, 1);
        var e = await Assert.ThrowsAsync<IscsiConnectionLostException>(async () => await session.ExecuteAsync(1, cdb, ScsiDataDirection.Read, new byte[512]));
        Assert.Contains("places data itself", e.Message);
    }

    [Fact]
    public async Task Logout_waits_for_outstanding_commands()
    {
        var bed = new FakeTargetBed(output);
        var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        bed.Target.HoldCommands = true;
        var read = lun.ReadAsync(0, new byte[512]).AsTask();
        await Wait.Until(() => bed.Target.LastConnection.Held.Count == 1);
        var logout = session.LogoutAsync();
        await Task.Delay(100);
        Assert.Equal(0, bed.CountReceived(p => p.Opcode == IscsiOpcode.LogoutRequest));
        await Assert.ThrowsAsync<IscsiSessionClosedException>(async () => await lun.ReadAsync(1, new byte[512]));
        await bed.Target.LastConnection.ReleaseHeldAsync();
        await read;
        await logout.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, bed.CountReceived(p => p.Opcode == IscsiOpcode.LogoutRequest));
        Assert.Equal(IscsiSessionState.LoggedOut, session.State);
        Assert.DoesNotContain(bed.Logs.Lines, l => l.StartsWith("Error", StringComparison.Ordinal));
        await session.DisposeAsync();
    }

    [Fact]
    public async Task A_target_that_closes_instead_of_answering_the_logout_has_still_logged_out()
    {
        // istgt now and then closes the connection on a Logout without answering it.
        var bed = new FakeTargetBed(output);
        var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        await lun.WriteAsync(0, new byte[512]);
        bed.Target.Intercept = (connection, pdu) =>
        {
            if (pdu.Opcode != IscsiOpcode.LogoutRequest) return false;
            connection.Side.Close();
            return true;
        };
        await session.LogoutAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(IscsiSessionState.LoggedOut, session.State);
        Assert.Contains(bed.Logs.Lines, l => l.Contains("closed the connection instead of answering"));
        await session.DisposeAsync();
    }

    [Fact]
    public async Task Reinstatement_reuses_the_isid_and_reissues_commands()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync(bed.Options() with { RetainCommandsOnConnectionLoss = true });
        var lun = await session.OpenLunAsync(1);
        bed.Target.HoldCommands = true;
        var data = new byte[1024];
        Random.Shared.NextBytes(data);
        var write = lun.WriteAsync(10, data).AsTask();
        await Wait.Until(() => bed.Target.LastConnection.Held.Count == 1);
        bed.Target.LastConnection.Side.Close(); // the target drops the connection, the write unanswered
        await Wait.Until(() => session.State == IscsiSessionState.ConnectionLost);
        Assert.False(write.IsCompleted);
        bed.Target.HoldCommands = false;
        await session.ReinstateAsync();
        await write.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(data, bed.Target.Disk.AsSpan(10 * 512, 1024).ToArray());
        var logins = bed.Target.Received.Where(p => p.Opcode == IscsiOpcode.LoginRequest).Select(p => LoginRequestPdu.Read(p.Header)).ToList();
        Assert.All(logins, l => Assert.Equal(session.Isid, l.Isid));
        Assert.All(logins, l => Assert.Equal(0, l.Tsih));
        Assert.Equal(2, bed.Target.Logins);
    }

    [Fact]
    public async Task A_silent_target_is_declared_dead_by_the_owner()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync(bed.Options() with { RetainCommandsOnConnectionLoss = true });
        var lost = new TaskCompletionSource<IscsiConnectionLostEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        session.ConnectionLost += (_, e) => lost.TrySetResult(e);
        bed.Target.Intercept = (_, pdu) => true; // swallows everything from now on
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => session.PingAsync(timeout.Token));
        session.AbortConnection("no answer to a NOP-Out within 200 ms");
        var e = await lost.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("no answer to a NOP-Out within 200 ms", e.Reason.Message);
        Assert.Equal(IscsiSessionState.ConnectionLost, session.State);
        bed.Target.Intercept = null;
        await session.ReinstateAsync();
        Assert.True(await session.PingAsync() < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Retained_commands_fail_when_the_owner_gives_up()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await bed.LoginAsync(bed.Options() with { RetainCommandsOnConnectionLoss = true });
        var lun = await session.OpenLunAsync(1);
        bed.Target.LastConnection.Side.Close();
        await Wait.Until(() => session.State == IscsiSessionState.ConnectionLost);
        var queued = lun.ReadAsync(0, new byte[512]).AsTask();
        Assert.False(queued.IsCompleted);
        session.FailOutstandingCommands(new IOException("replacement timeout expired"));
        var e = await Assert.ThrowsAsync<IOException>(() => queued);
        Assert.Equal("replacement timeout expired", e.Message);
        await Assert.ThrowsAsync<IscsiConnectionLostException>(async () => await lun.ReadAsync(0, new byte[512]));
        await session.ReinstateAsync();
        await lun.ReadAsync(0, new byte[512]);
    }

    [Fact]
    public async Task Discovery_lists_all_portals_and_defaults_to_the_asked_one()
    {
        var bed = new FakeTargetBed(output);
        await using var session = await IscsiSession.LoginAsync(bed.Transport, new IscsiSessionOptions
        {
            Portals = [FakeTargetBed.Portal],
            InitiatorName = "iqn.2026-11.io.iserblockd.test:unit",
            SessionType = IscsiSessionType.Discovery,
        }, bed.Logs);
        var targets = await session.SendTargetsAsync();
        Assert.Equal(2, targets.Count);
        Assert.Equal(["192.0.2.10:3260,1", "[2001:db8::10]:3261,2"], targets[0].Portals.Select(p => p.ToString()));
        Assert.Equal(FakeTargetBed.Portal, Assert.Single(targets[1].Portals));
        Assert.Equal("Discovery", bed.Target.LastConnection.InitiatorKeys["SessionType"]);
        Assert.False(bed.Target.LastConnection.InitiatorKeys.ContainsKey("TargetName"));
        Assert.False(bed.Target.LastConnection.InitiatorKeys.ContainsKey("MaxBurstLength")); // irrelevant to discovery
    }
}
