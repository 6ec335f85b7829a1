using System.Buffers.Binary;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Iscsi.Tests.Codec;

/// <summary>
/// PDUs captured with tcpdump on loopback between iserblockctl inquiry and tgtd 1.0.85 (Debian 12), decoded and
/// re-encoded byte for byte.
/// </summary>
public sealed class TgtdCaptureTests
{
    // Ours: the first Login Request (security stage, T=1 to operational, AuthMethod=None).
    private const string LoginRequest1 =
        "438100000000008f801c8d9c00000000420b15a4000000000000000100000000000000000000000000000000000000004" +
        "96e69746961746f724e616d653d69716e2e323032362d31312e696f2e69736572626c6f636b642e746573743a636170747572652d686f73740053657373696f6e547970653d4e6f726d616c005461726765744e616d653d69716e2e323032362d31312e696f2e69736572626c6f636b642e746573743a6361707475726500417574684d6574686f643d4e6f6e650000";

    // tgtd: the answer (T=1, NSG=1), TargetPortalGroupTag=1 AuthMethod=None, 39 bytes + 1 pad.
    private const string LoginResponse1 =
        "2381000000000027801c8d9c00000000420b15a400000000000000000000000100000002000000000000000000000000546172676574506f7274616c47726f75705461673d3100417574684d6574686f643d4e6f6e650000";

    // tgtd: the operational answer, TSIH 0x0100, without MaxRecvDataSegmentLength.
    private const string LoginResponse2 =
        "23870000000000fd801c8d9c00000100420b15a4000000000000000100000001000000020000000000000000000000004865616465724469676573743d4e6f6e6500446174614469676573743d4e6f6e650044656661756c7454696d6532576169743d320044656661756c7454696d653252657461696e3d30004572726f725265636f766572794c6576656c3d3000496e697469616c5232543d59657300496d6d656469617465446174613d596573004d617842757273744c656e6774683d32363231343400466972737442757273744c656e6774683d3635353336004d61784f75747374616e64696e675232543d31004d6178436f6e6e656374696f6e733d310044617461504455496e4f726465723d596573004461746153657175656e6365496e4f726465723d59657300000000";

    // tgtd: TEST UNIT READY answered with CHECK CONDITION, UNIT ATTENTION 29/00.
    private const string UnitAttention =
        "2180000200000014000000000000000000010000000000000000000200000002000000820000000000000000000000000012700006000000000a00000000290000000000";

    // tgtd: INQUIRY data with status collapsed into the Data-In (F, U, S), 66 of 96 bytes.
    private const string InquiryDataIn =
        "2583000000000042000000000000000000030000ffffffff00000004000000040000008400000000000000000000001e000005123d00000249455420202020205649525455414c2d4449534b20202020303030310000000000000000000000000000000000000000000004c00960030000000000";

    // tgtd: READ CAPACITY(16) data, 16384 blocks of 512, 8 logical per physical.
    private const string ReadCapacityDataIn =
        "2581000000000020000000000000000000040000ffffffff0000000500000005000000850000000000000000000000000000000000003fff000002000003000000000000000000000000000000000000";

    // tgtd: VPD 0x83 (device identification) Data-In.
    private const string DeviceIdentificationDataIn =
        "258300000000004c000000000000000000070000ffffffff0000000800000008000000880000000000000000000003b400830048020100244945542020202020303030313030303100000000000000000000000000000000000000000103000830000001000000010103001060000000000000000e00000000010001";

    // Ours: READ CAPACITY(16) command; our Logout Request; tgtd's Logout Response.
    private const string ReadCapacityCommand = "01c10000000000000001000000000000000400000000002000000004000000059e100000000000000000000000200000";
    private const string LogoutRequestHex = "4680000000000000000000000000000080000001000000000000000a0000000b00000000000000000000000000000000";
    private const string LogoutResponseHex = "2680000000000000000000000000000080000001000000000000000b0000000a0000008a000000000000000000000000";

    private static (byte[] Header, byte[] Data) Split(string hex)
    {
        var bytes = Convert.FromHexString(hex);
        var ahs = BasicHeaderSegment.GetTotalAhsLength(bytes);
        var length = BasicHeaderSegment.GetDataSegmentLength(bytes);
        Assert.Equal(BasicHeaderSegment.Length + ahs + length + PduLayout.Padding(length), bytes.Length);
        return (bytes[..(48 + ahs)], bytes.AsSpan(48 + ahs, length).ToArray());
    }

    [Fact]
    public void Our_login_request()
    {
        var (header, data) = Split(LoginRequest1);
        var pdu = LoginRequestPdu.Read(header);
        Assert.True(pdu.Transit);
        Assert.Equal(LoginStage.SecurityNegotiation, pdu.CurrentStage);
        Assert.Equal(LoginStage.OperationalNegotiation, pdu.NextStage);
        Assert.Equal(Isid.Parse("801c8d9c0000"), pdu.Isid);
        Assert.Equal(0, pdu.Tsih);
        Assert.Equal(1u, pdu.CmdSN);
        var again = new byte[48];
        pdu.Write(again);
        Assert.Equal(header, again);
        Assert.Equal(
            [new("InitiatorName", "iqn.2026-11.io.iserblockd.test:capture-host"), new("SessionType", "Normal"),
             new("TargetName", "iqn.2026-11.io.iserblockd.test:capture"), new KeyValuePair<string, string>("AuthMethod", "None")],
            TextKeyValues.Parse(data));
    }

    [Fact]
    public void Tgtd_login_responses_negotiate_to_the_rfc_defaults_it_omits()
    {
        var (h1, d1) = Split(LoginResponse1);
        var first = LoginResponsePdu.Read(h1);
        Assert.True(first.Transit);
        Assert.Equal(LoginStage.OperationalNegotiation, first.NextStage);
        Assert.Equal(0, first.Status);
        Assert.Equal(0x420b15a4u, first.InitiatorTaskTag);
        Assert.Equal(2u, first.MaxCmdSN);
        Assert.Equal([new("TargetPortalGroupTag", "1"), new KeyValuePair<string, string>("AuthMethod", "None")], TextKeyValues.Parse(d1));

        var (h2, d2) = Split(LoginResponse2);
        var second = LoginResponsePdu.Read(h2);
        Assert.Equal(LoginStage.FullFeaturePhase, second.NextStage);
        Assert.Equal(0x0100, second.Tsih);
        var again = new byte[48];
        second.Write(again);
        Assert.Equal(h2, again);

        var negotiator = new OperationalNegotiator(new OperationalOptions(), isDiscovery: false);
        negotiator.CreateOffers();
        Assert.Empty(negotiator.ProcessTargetKeys(TextKeyValues.Parse(d2)));
        var p = negotiator.Complete();
        Assert.Equal(8192, p.MaxSendDataSegmentLength); // tgtd declares nothing: the RFC default
        Assert.True(p.InitialR2T); // OR: tgtd says Yes
        Assert.True(p.ImmediateData);
        Assert.Equal(262144, p.MaxBurstLength);
        Assert.Equal(65536, p.FirstBurstLength);
        Assert.Equal(DigestType.None, p.HeaderDigest);
    }

    [Fact]
    public void Tgtd_unit_attention_response()
    {
        var (header, data) = Split(UnitAttention);
        var r = ScsiResponsePdu.Read(header);
        Assert.Equal((byte)ScsiStatus.CheckCondition, r.Status);
        Assert.Equal(IscsiServiceResponse.CommandCompleted, r.Response);
        Assert.Equal(0x82u, r.MaxCmdSN);
        var senseLength = BinaryPrimitives.ReadUInt16BigEndian(data);
        var sense = SenseData.TryParse(data.AsSpan(2, senseLength))!;
        Assert.Equal(SenseKey.UnitAttention, sense.Key);
        Assert.Equal("UNIT ATTENTION: power on, reset, or bus device reset occurred (ASC/ASCQ 29/00)", sense.ToString());
        var again = new byte[48];
        r.Write(again);
        Assert.Equal(header, again);
    }

    [Fact]
    public void Tgtd_inquiry_data_in_with_collapsed_status()
    {
        var (header, data) = Split(InquiryDataIn);
        var d = DataInPdu.Read(header);
        Assert.True(d.Final && d.HasStatus && d.Underflow);
        Assert.Equal(30u, d.ResidualCount);
        Assert.Equal(4u, d.StatSN);
        Assert.Equal(0u, d.DataSN);
        Assert.Equal(BasicHeaderSegment.ReservedTag, d.TargetTransferTag);
        var inquiry = InquiryData.Parse(data);
        Assert.Equal(("IET", "VIRTUAL-DISK", "0001"), (inquiry.Vendor, inquiry.Product, inquiry.Revision));
        Assert.True(inquiry.IsDirectAccessBlockDevice && inquiry.CommandQueueing);
        var again = new byte[48];
        d.Write(again);
        Assert.Equal(header, again);
    }

    [Fact]
    public void Tgtd_read_capacity_and_device_identification()
    {
        var capacity = ReadCapacityData.Parse16(Split(ReadCapacityDataIn).Data);
        Assert.Equal(16384UL, capacity.BlockCount);
        Assert.Equal(512u, capacity.LogicalBlockLength);
        Assert.Equal(4096u, capacity.PhysicalBlockLength);

        var designators = Designator.ParsePage(Split(DeviceIdentificationDataIn).Data);
        Assert.Equal(["t10.IET     00010001", "naa.3000000100000001", "naa.60000000000000000e00000000010001"], designators.Select(d => d.ToString()));
    }

    [Fact]
    public void Our_commands_and_logout()
    {
        var (header, _) = Split(ReadCapacityCommand);
        var command = ScsiCommandPdu.ReadHeader(header);
        Assert.True(command.Immediate == false && command.Read && command.Final);
        Assert.Equal(TaskAttribute.Simple, command.Attribute);
        Assert.Equal(LunAddress.Encode(1), command.Lun);
        Assert.Equal("READ CAPACITY(16)", ScsiOpcode.Name(command.Cdb.Span));
        var again = new byte[48];
        command.WriteHeader(again);
        Assert.Equal(header, again);

        var logout = LogoutRequestPdu.Read(Convert.FromHexString(LogoutRequestHex));
        Assert.True(logout.Immediate);
        Assert.Equal(LogoutReason.CloseSession, logout.Reason);
        Assert.Equal(0x80000001u, logout.InitiatorTaskTag);
        var response = LogoutResponsePdu.Read(Convert.FromHexString(LogoutResponseHex));
        Assert.Equal(LogoutResponse.ClosedSuccessfully, response.Response);
        Assert.Equal(logout.InitiatorTaskTag, response.InitiatorTaskTag);
    }
}
