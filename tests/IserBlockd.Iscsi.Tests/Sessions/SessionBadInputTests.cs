using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Iscsi.Tests.Fakes;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Sessions;

/// <summary>
/// A target that breaks the protocol: the connection fails with a clear logged reason, every pending command
/// fails with <see cref="IscsiConnectionLostException"/>, and nothing else is disturbed.
/// </summary>
public sealed class SessionBadInputTests(ITestOutputHelper output)
{
    /// <summary>Answers the first READ with <paramref name="reply"/> instead of data; pending commands are held.</summary>
    private async Task<(FakeTargetBed Bed, Exception Error)> ReadWithReplyAsync(Func<uint, RawPdu> reply, OperationalOptions? operational = null)
    {
        var bed = new FakeTargetBed(output);
        var session = await bed.LoginAsync(bed.Options(operational));
        var lun = await session.OpenLunAsync(1);
        bed.Target.HoldCommands = true;
        var held = Enumerable.Range(0, 5).Select(i => lun.WriteAsync((ulong)i, new byte[512]).AsTask()).ToArray();
        await Wait.Until(() => bed.Target.LastConnection.Held.Count == 5);
        bed.Target.HoldCommands = false;
        bed.Target.Intercept = (connection, pdu) =>
        {
            if (pdu.Opcode != IscsiOpcode.ScsiCommand || pdu.Header[32] is not (Scsi.ScsiOpcode.Read10 or Scsi.ScsiOpcode.Read16)) return false;
            _ = connection.SendAsync(reply(pdu.Itt));
            return true;
        };
        var error = await Record.ExceptionAsync(async () => await lun.ReadAsync(0, new byte[4096]));
        foreach (var w in held)
        {
            var e = await Assert.ThrowsAsync<IscsiConnectionLostException>(() => w);
            Assert.Contains("connection to 192.0.2.1:3260 lost", e.Message);
        }
        Assert.Equal(IscsiSessionState.Failed, session.State);
        Assert.Equal(0, session.OutstandingCommands);
        await session.DisposeAsync();
        return (bed, error!);
    }

    private static RawPdu DataIn(uint itt, int length, uint offset = 0, uint dataSN = 0, int? declaredLength = null)
    {
        var pdu = new DataInPdu
        {
            Final = true,
            DataSegmentLength = declaredLength ?? length,
            InitiatorTaskTag = itt,
            TargetTransferTag = BasicHeaderSegment.ReservedTag,
            DataSN = dataSN,
            BufferOffset = offset,
            ExpCmdSN = 1,
            MaxCmdSN = 64,
        };
        return RawPdu.Of(h => pdu.Write(h), new byte[length]);
    }

    private void AssertFailure(FakeTargetBed bed, Exception error, string reason)
    {
        output.WriteLine(error.Message);
        Assert.IsType<IscsiConnectionLostException>(error);
        Assert.Contains(reason, error.Message);
        Assert.Contains(bed.Logs.Lines, l => l.StartsWith("Error: iSCSI connection to 192.0.2.1:3260", StringComparison.Ordinal) && l.Contains(reason));
    }

    [Fact]
    public async Task Unknown_opcode()
    {
        var (bed, error) = await ReadWithReplyAsync(itt => RawPdu.Of(h => BasicHeaderSegment.WriteCommon(h, (IscsiOpcode)0x1c, false, 0x80, 0, 0)));
        AssertFailure(bed, error, "unknown or unexpected opcode 0x1c");
    }

    [Fact]
    public async Task Initiator_opcode_from_the_target()
    {
        var (bed, error) = await ReadWithReplyAsync(itt => RawPdu.Of(h => new NopOutPdu { InitiatorTaskTag = itt }.Write(h)));
        AssertFailure(bed, error, "unknown or unexpected opcode 0x00");
    }

    [Fact]
    public async Task Data_in_for_an_unknown_task()
    {
        var (bed, error) = await ReadWithReplyAsync(_ => DataIn(0x0bad_f00d, 512));
        AssertFailure(bed, error, "Data-In for unknown ITT 0x0badf00d");
    }

    [Fact]
    public async Task Response_for_an_unknown_task()
    {
        var (bed, error) = await ReadWithReplyAsync(_ => RawPdu.Of(h => new ScsiResponsePdu { InitiatorTaskTag = 0x7777, ExpCmdSN = 1, MaxCmdSN = 64 }.Write(h)));
        AssertFailure(bed, error, "SCSI Response for unknown ITT 0x00007777");
    }

    [Fact]
    public async Task Data_segment_longer_than_negotiated()
    {
        var (bed, error) = await ReadWithReplyAsync(itt => DataIn(itt, 8192 + 512), new OperationalOptions { MaxRecvDataSegmentLength = 8192 });
        AssertFailure(bed, error, "exceeds the negotiated MaxRecvDataSegmentLength of 8192");
    }

    [Fact]
    public async Task Data_in_beyond_the_buffer()
    {
        var (bed, error) = await ReadWithReplyAsync(itt => DataIn(itt, 512, offset: 4096));
        AssertFailure(bed, error, "overruns the 4096-byte buffer");
    }

    [Fact]
    public async Task Data_in_out_of_sequence()
    {
        var (bed, error) = await ReadWithReplyAsync(itt => DataIn(itt, 512, dataSN: 3));
        AssertFailure(bed, error, "has DataSN 3, expected 0");
    }

    [Fact]
    public async Task R2T_for_a_read()
    {
        var (bed, error) = await ReadWithReplyAsync(itt => RawPdu.Of(h => new ReadyToTransferPdu
        {
            InitiatorTaskTag = itt, TargetTransferTag = 1, DesiredDataTransferLength = 512, ExpCmdSN = 1, MaxCmdSN = 64,
        }.Write(h)));
        AssertFailure(bed, error, "R2T for ITT");
    }

    [Fact]
    public async Task Truncated_pdu()
    {
        var (bed, error) = await ReadWithReplyAsync(_ => new RawPdu(new byte[20], []));
        AssertFailure(bed, error, "truncated");
    }

    [Fact]
    public async Task Truncated_data_segment()
    {
        var (bed, error) = await ReadWithReplyAsync(itt => DataIn(itt, 100, declaredLength: 512));
        AssertFailure(bed, error, "truncated data segment (100 of 512 bytes)");
    }

    [Fact]
    public async Task A_broken_connection_leaves_other_sessions_working()
    {
        var good = new FakeTargetBed(output);
        await using var healthy = await good.LoginAsync();
        var lun = await healthy.OpenLunAsync(1);
        await ReadWithReplyAsync(_ => RawPdu.Of(h => BasicHeaderSegment.WriteCommon(h, (IscsiOpcode)0x3e, false, 0, 0, 0)));
        var data = new byte[8192];
        Random.Shared.NextBytes(data);
        await lun.WriteAsync(16, data);
        var back = new byte[8192];
        await lun.ReadAsync(16, back);
        Assert.Equal(data, back);
    }

    [Fact]
    public async Task Garbage_during_login_is_a_login_failure()
    {
        var bed = new FakeTargetBed(output);
        bed.Target.Intercept = (connection, pdu) =>
        {
            if (pdu.Opcode != IscsiOpcode.LoginRequest) return false;
            _ = connection.SendAsync(RawPdu.Of(h => new ScsiResponsePdu { InitiatorTaskTag = pdu.Itt }.Write(h)));
            return true;
        };
        var e = await Assert.ThrowsAsync<IscsiLoginException>(() => bed.LoginAsync());
        Assert.Contains("expected a Login Response, got opcode 0x21", e.Message);
    }

    [Fact]
    public async Task Login_response_for_another_task()
    {
        var bed = new FakeTargetBed(output);
        bed.Target.Intercept = (connection, pdu) =>
        {
            if (pdu.Opcode != IscsiOpcode.LoginRequest) return false;
            var request = LoginRequestPdu.Read(pdu.Header);
            _ = connection.SendAsync(RawPdu.Of(h => new LoginResponsePdu { Isid = request.Isid, InitiatorTaskTag = request.InitiatorTaskTag + 1 }.Write(h)));
            return true;
        };
        var e = await Assert.ThrowsAsync<IscsiLoginException>(() => bed.LoginAsync());
        Assert.Contains("Login Response for ITT", e.Message);
    }
}
