using FsCheck.Xunit;
using IserBlockd.Iscsi.Pdu;

namespace IserBlockd.Iscsi.Tests.Codec;

/// <summary>Every PDU type writes and reads back the same fields (properties over random field values).</summary>
public sealed class PduRoundTripTests
{
    private delegate T Reader<out T>(ReadOnlySpan<byte> bhs);

    private delegate void Writer(Span<byte> bhs);

    private static T RoundTrip<T>(Writer write, Reader<T> read)
    {
        var buffer = new byte[48];
        write(buffer);
        return read(buffer);
    }

    [Property]
    public bool Scsi_command(bool immediate, bool final, bool read, bool write, uint itt, uint edtl, uint cmdSN, uint expStatSN, ulong lun, byte cdbLength, int dataLength)
    {
        var length = 6 + cdbLength % 250;
        var cdb = new byte[length];
        Random.Shared.NextBytes(cdb);
        var pdu = new ScsiCommandPdu
        {
            Immediate = immediate, Final = final, Read = read, Write = write, Attribute = TaskAttribute.Ordered,
            DataSegmentLength = dataLength & 0xffffff, Lun = lun, InitiatorTaskTag = itt, ExpectedDataTransferLength = edtl,
            CmdSN = cmdSN, ExpStatSN = expStatSN, Cdb = cdb, BidirectionalReadLength = read && write ? edtl / 2 : null,
        };
        var header = new byte[pdu.HeaderLength];
        Assert.Equal(header.Length, pdu.WriteHeader(header));
        Assert.Equal(0, header.Length % 4);
        var back = ScsiCommandPdu.ReadHeader(header);
        return back.Immediate == immediate && back.Final == final && back.Read == read && back.Write == write
               && back.Attribute == TaskAttribute.Ordered && back.DataSegmentLength == (dataLength & 0xffffff) && back.Lun == lun
               && back.InitiatorTaskTag == itt && back.ExpectedDataTransferLength == edtl && back.CmdSN == cmdSN && back.ExpStatSN == expStatSN
               && back.Cdb.Span[..length].SequenceEqual(cdb) && back.BidirectionalReadLength == pdu.BidirectionalReadLength;
    }

    [Property]
    public bool Data_in(bool final, bool status, bool underflow, byte scsiStatus, uint itt, uint ttt, uint statSN, uint dataSN, uint offset, uint residual, ulong lun)
    {
        var pdu = new DataInPdu
        {
            Final = final, HasStatus = status, Underflow = underflow, Status = scsiStatus, DataSegmentLength = 4096, Lun = lun,
            InitiatorTaskTag = itt, TargetTransferTag = ttt, StatSN = statSN, ExpCmdSN = statSN + 1, MaxCmdSN = statSN + 9,
            DataSN = dataSN, BufferOffset = offset, ResidualCount = residual,
        };
        return RoundTrip(pdu.Write, DataInPdu.Read).Equals(pdu);
    }

    [Property]
    public bool Data_out(bool final, uint itt, uint ttt, uint expStatSN, uint dataSN, uint offset, ulong lun)
    {
        var pdu = new DataOutPdu { Final = final, DataSegmentLength = 8192, Lun = lun, InitiatorTaskTag = itt, TargetTransferTag = ttt, ExpStatSN = expStatSN, DataSN = dataSN, BufferOffset = offset };
        return RoundTrip(pdu.Write, DataOutPdu.Read).Equals(pdu);
    }

    [Property]
    public bool Ready_to_transfer(uint itt, uint ttt, uint statSN, uint r2tsn, uint offset, uint length, ulong lun)
    {
        var pdu = new ReadyToTransferPdu { Lun = lun, InitiatorTaskTag = itt, TargetTransferTag = ttt, StatSN = statSN, ExpCmdSN = 1, MaxCmdSN = 2, R2TSN = r2tsn, BufferOffset = offset, DesiredDataTransferLength = length };
        return RoundTrip(pdu.Write, ReadyToTransferPdu.Read).Equals(pdu);
    }

    [Property]
    public bool Scsi_response(bool underflow, bool overflow, byte status, uint itt, uint statSN, uint residual)
    {
        var pdu = new ScsiResponsePdu { Underflow = underflow, Overflow = overflow, Status = status, DataSegmentLength = 20, InitiatorTaskTag = itt, StatSN = statSN, ExpCmdSN = 3, MaxCmdSN = 4, ResidualCount = residual, BidirectionalReadResidualCount = residual / 2 };
        return RoundTrip(pdu.Write, ScsiResponsePdu.Read).Equals(pdu);
    }

    [Property]
    public bool Login_request(bool transit, ulong isid, ushort tsih, uint itt, ushort cid, uint cmdSN)
    {
        var pdu = new LoginRequestPdu
        {
            Transit = transit, CurrentStage = LoginStage.OperationalNegotiation, NextStage = transit ? LoginStage.FullFeaturePhase : 0,
            DataSegmentLength = 300, Isid = new Isid(isid & 0xffff_ffff_ffff), Tsih = tsih, InitiatorTaskTag = itt, ConnectionId = cid, CmdSN = cmdSN, ExpStatSN = cmdSN + 5,
        };
        return RoundTrip(pdu.Write, LoginRequestPdu.Read).Equals(pdu);
    }

    [Property]
    public bool Login_response(bool transit, byte statusClass, byte detail, ushort tsih, uint itt)
    {
        var pdu = new LoginResponsePdu
        {
            Transit = transit, CurrentStage = LoginStage.SecurityNegotiation, NextStage = transit ? LoginStage.OperationalNegotiation : 0,
            DataSegmentLength = 77, Isid = new Isid(0x80_1234_5678_00), Tsih = tsih, InitiatorTaskTag = itt, StatSN = 7, ExpCmdSN = 8, MaxCmdSN = 9,
            StatusClass = statusClass, StatusDetail = detail,
        };
        return RoundTrip(pdu.Write, LoginResponsePdu.Read).Equals(pdu);
    }

    [Fact]
    public void Control_pdus()
    {
        var nopOut = new NopOutPdu { Immediate = true, DataSegmentLength = 4, Lun = 5, InitiatorTaskTag = 6, TargetTransferTag = 7, CmdSN = 8, ExpStatSN = 9 };
        Assert.Equal(nopOut, RoundTrip(nopOut.Write, NopOutPdu.Read));
        var nopIn = new NopInPdu { DataSegmentLength = 4, Lun = 5, InitiatorTaskTag = 6, TargetTransferTag = 7, StatSN = 8, ExpCmdSN = 9, MaxCmdSN = 10 };
        Assert.Equal(nopIn, RoundTrip(nopIn.Write, NopInPdu.Read));
        var tmf = new TaskManagementRequestPdu { Immediate = true, Function = TaskManagementFunction.AbortTask, Lun = 1, InitiatorTaskTag = 2, ReferencedTaskTag = 3, CmdSN = 4, ExpStatSN = 5, RefCmdSN = 6, ExpDataSN = 7 };
        Assert.Equal(tmf, RoundTrip(tmf.Write, TaskManagementRequestPdu.Read));
        var tmfResponse = new TaskManagementResponsePdu { Response = TaskManagementResponse.TaskDoesNotExist, InitiatorTaskTag = 2, StatSN = 3, ExpCmdSN = 4, MaxCmdSN = 5 };
        Assert.Equal(tmfResponse, RoundTrip(tmfResponse.Write, TaskManagementResponsePdu.Read));
        var text = new TextRequestPdu { Final = true, DataSegmentLength = 16, InitiatorTaskTag = 1, TargetTransferTag = BasicHeaderSegment.ReservedTag, CmdSN = 2, ExpStatSN = 3 };
        Assert.Equal(text, RoundTrip(text.Write, TextRequestPdu.Read));
        var textResponse = new TextResponsePdu { Continue = true, DataSegmentLength = 512, InitiatorTaskTag = 1, TargetTransferTag = 9, StatSN = 2, ExpCmdSN = 3, MaxCmdSN = 4 };
        Assert.Equal(textResponse, RoundTrip(textResponse.Write, TextResponsePdu.Read));
        var logout = new LogoutRequestPdu { Immediate = true, Reason = LogoutReason.CloseConnection, InitiatorTaskTag = 1, ConnectionId = 2, CmdSN = 3, ExpStatSN = 4 };
        Assert.Equal(logout, RoundTrip(logout.Write, LogoutRequestPdu.Read));
        var logoutResponse = new LogoutResponsePdu { Response = LogoutResponse.CleanupFailed, InitiatorTaskTag = 1, StatSN = 2, ExpCmdSN = 3, MaxCmdSN = 4, Time2Wait = 5, Time2Retain = 6 };
        Assert.Equal(logoutResponse, RoundTrip(logoutResponse.Write, LogoutResponsePdu.Read));
        var reject = new RejectPdu { Reason = RejectReason.InvalidPduField, DataSegmentLength = 48, StatSN = 1, ExpCmdSN = 2, MaxCmdSN = 3, DataSN = 4 };
        Assert.Equal(reject, RoundTrip(reject.Write, RejectPdu.Read));
        var async = new AsyncMessagePdu { DataSegmentLength = 20, Lun = 1, StatSN = 2, ExpCmdSN = 3, MaxCmdSN = 4, Event = AsyncEvent.LogoutRequested, Parameter1 = 5, Parameter2 = 6, Parameter3 = 7 };
        Assert.Equal(async, RoundTrip(async.Write, AsyncMessagePdu.Read));
    }

    [Fact]
    public void Extended_cdb_ahs_layout()
    {
        var cdb = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
        var pdu = new ScsiCommandPdu { Final = true, InitiatorTaskTag = 1, Cdb = cdb };
        var header = new byte[pdu.HeaderLength];
        pdu.WriteHeader(header);
        Assert.Equal(48 + 20, header.Length); // 3 + 1 reserved + 16 extra CDB bytes = 20
        Assert.Equal(5, header[4]); // TotalAHSLength in words
        Assert.Equal([0x00, 0x11, 0x01, 0x00], header[48..52]); // AHSLength 17 (32 - 15), type 1, reserved
        Assert.Equal(cdb[16..], header[52..68]);
        Assert.Equal(cdb[..16], header[32..48]);
    }

    [Fact]
    public void Malformed_ahs_is_a_protocol_error()
    {
        var pdu = new ScsiCommandPdu { InitiatorTaskTag = 1, Cdb = new byte[32] };
        var header = new byte[pdu.HeaderLength];
        pdu.WriteHeader(header);
        header[49] = 200; // AHSLength far beyond the area
        var e = Assert.Throws<IscsiProtocolException>(() => ScsiCommandPdu.ReadHeader(header));
        Assert.Contains("overruns", e.Message);
        Assert.Throws<IscsiProtocolException>(() => ScsiCommandPdu.ReadHeader(header.AsSpan(0, 40)));
        Assert.Throws<IscsiProtocolException>(() => DataInPdu.Read(new byte[48])); // a NOP-Out is no Data-In
    }

    [Fact]
    public void Oversized_fields_are_refused_when_writing()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataOutPdu { DataSegmentLength = 1 << 24 }.Write(new byte[48]));
        Assert.Throws<ArgumentException>(() => new ScsiCommandPdu { Cdb = new byte[300] }.WriteHeader(new byte[1100]));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 3)]
    [InlineData(2, 2)]
    [InlineData(3, 1)]
    [InlineData(4, 0)]
    [InlineData(8193, 3)]
    public void Padding(int length, int padding) => Assert.Equal(padding, PduLayout.Padding(length));
}
