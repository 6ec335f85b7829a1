using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Transport.Iser;

namespace IserBlockd.Transport.Tests.Iser;

/// <summary>The iSER login keys (RFC 7145 §6) alone and inside the core's operational negotiation.</summary>
public class IserLoginKeysTests
{
    private static IserLoginKeys Keys(int receive = 8192, int send = 8192, int unexpected = 4, int maxCommand = 512 * 1024) =>
        new(receive, send, unexpected, maxCommand);

    private static KeyValuePair<string, string> Kv(string key, string value) => new(key, value);

    [Fact]
    public void A_normal_session_offers_the_segment_lengths_we_post_the_unexpected_reserve_and_RDMAExtensions()
    {
        var offers = Keys(receive: 16384, send: 8192, unexpected: 6).GetOffers(isDiscovery: false).ToList();
        Assert.Equal(
            [
                Kv("InitiatorRecvDataSegmentLength", "16384"),
                Kv("TargetRecvDataSegmentLength", "8192"),
                Kv("MaxOutstandingUnexpectedPDUs", "6"),
                Kv("RDMAExtensions", "Yes"),
            ], offers);
    }

    [Fact]
    public void A_discovery_session_declares_only_what_one_receive_buffer_holds()
    {
        Assert.Equal([Kv("MaxRecvDataSegmentLength", "8192")], Keys().GetOffers(isDiscovery: true).ToList());
    }

    [Theory]
    [InlineData("MaxRecvDataSegmentLength", true)]
    [InlineData("HeaderDigest", true)]
    [InlineData("DataDigest", true)]
    [InlineData("FirstBurstLength", false)]
    [InlineData("ImmediateData", false)]
    public void Replaces_the_segment_length_and_digest_keys(string key, bool replaced)
    {
        Assert.Equal(replaced, Keys().Replaces(key, isDiscovery: false));
        Assert.Equal(replaced, Keys().Replaces(key, isDiscovery: true));
    }

    [Theory]
    [InlineData("No")]
    [InlineData("NotUnderstood")]
    [InlineData("Reject")]
    public void RDMAExtensions_refused_fails_the_login_clearly(string answer)
    {
        var keys = Keys();
        keys.GetOffers(false).ToList();
        var e = Assert.Throws<LoginParameterException>(() => keys.TryAccept("RDMAExtensions", answer, weOffered: true, out _));
        Assert.Contains($"RDMAExtensions={answer}", e.Message);
        Assert.Contains("does not accept iSER", e.Message);
        Assert.True(keys.TargetRefusedRdma);
    }

    [Fact]
    public void A_target_that_never_answers_RDMAExtensions_fails_at_the_end_of_login()
    {
        var keys = Keys();
        keys.GetOffers(false).ToList();
        var e = Assert.Throws<LoginParameterException>(() => keys.Complete(new NegotiatedParameters()));
        Assert.Contains("never answered RDMAExtensions=Yes", e.Message);
        Assert.True(keys.TargetRefusedRdma);
    }

    [Theory]
    [InlineData("4096", 4096)]     // tgt's minimum rule with a smaller configured value
    [InlineData("8192", 8192)]
    [InlineData("262144", 8192)]   // a declarative echo larger than our buffers: we still only hold 8192
    public void The_receive_segment_is_the_smaller_of_both_sides(string answer, int expected)
    {
        var keys = Keys();
        keys.GetOffers(false).ToList();
        Assert.True(keys.TryAccept("InitiatorRecvDataSegmentLength", answer, weOffered: true, out var reply));
        Assert.Null(reply);
        Assert.Equal(expected, keys.ReceiveDataSegmentLength);
    }

    [Fact]
    public void Keys_the_target_offers_itself_are_answered_by_the_minimum()
    {
        var keys = Keys(send: 16384);
        keys.GetOffers(false).ToList();
        Assert.True(keys.TryAccept("TargetRecvDataSegmentLength", "65536", weOffered: false, out var reply));
        Assert.Equal("16384", reply);
        Assert.Equal(16384, keys.SendDataSegmentLength);
        Assert.True(keys.TryAccept("InitiatorRecvDataSegmentLength", "4096", weOffered: false, out reply));
        Assert.Equal("4096", reply);
        Assert.True(keys.TryAccept("MaxOutstandingUnexpectedPDUs", "32", weOffered: false, out reply));
        Assert.Equal("4", reply); // declarative: we declare our own reserve
        Assert.Equal(32, keys.TargetUnexpectedPduLimit);
    }

    [Fact]
    public void Defaults_stand_when_the_target_does_not_understand_a_key()
    {
        var keys = Keys(send: 65536);
        keys.GetOffers(false).ToList();
        Assert.True(keys.TryAccept("TargetRecvDataSegmentLength", "NotUnderstood", true, out _));
        Assert.True(keys.TryAccept("MaxOutstandingUnexpectedPDUs", "Irrelevant", true, out _));
        Assert.True(keys.TryAccept("RDMAExtensions", "Yes", true, out _));
        var p = keys.Complete(new NegotiatedParameters());
        Assert.Equal(8192, p.MaxSendDataSegmentLength); // RFC 7145 default TargetRecvDataSegmentLength
        Assert.Equal(0, keys.TargetUnexpectedPduLimit); // no declared limit
    }

    [Theory]
    [InlineData("TargetRecvDataSegmentLength", "511")]
    [InlineData("TargetRecvDataSegmentLength", "16777216")]
    [InlineData("InitiatorRecvDataSegmentLength", "lots")]
    [InlineData("MaxOutstandingUnexpectedPDUs", "1")]
    [InlineData("MaxOutstandingUnexpectedPDUs", "4294967296")]
    public void Values_out_of_range_fail_the_login(string key, string value)
    {
        var keys = Keys();
        keys.GetOffers(false).ToList();
        var e = Assert.Throws<LoginParameterException>(() => keys.TryAccept(key, value, true, out _));
        Assert.Contains($"{key}={value}", e.Message);
    }

    [Fact]
    public void Digests_offered_by_the_target_are_answered_None_or_refused()
    {
        var keys = Keys();
        keys.GetOffers(false).ToList();
        Assert.True(keys.TryAccept("HeaderDigest", "CRC32C,None", weOffered: false, out var reply));
        Assert.Equal("None", reply);
        var e = Assert.Throws<LoginParameterException>(() => keys.TryAccept("DataDigest", "CRC32C", weOffered: false, out _));
        Assert.Contains("iSER carries no digests", e.Message);
    }

    [Fact]
    public void Unknown_keys_are_left_to_the_core()
    {
        Assert.False(Keys().TryAccept("X-com.example.Key", "1", false, out _));
        Assert.False(Keys().TryAccept("FirstBurstLength", "65536", true, out _));
    }

    [Fact]
    public void With_the_core_negotiator_a_tgt_like_answer_yields_the_iSER_limits()
    {
        var keys = Keys();
        var negotiator = new OperationalNegotiator(new OperationalOptions { HeaderDigest = [DigestType.Crc32C, DigestType.None] }, isDiscovery: false, keys);
        var offers = negotiator.CreateOffers();
        Assert.DoesNotContain(offers, kv => kv.Key is "MaxRecvDataSegmentLength" or "HeaderDigest" or "DataDigest");
        Assert.Equal("Yes", offers.Single(kv => kv.Key == "RDMAExtensions").Value);

        // What tgtd's iSER driver answers: InitialR2T=Yes, ImmediateData=No, the iSER keys by its minimum rule.
        var replies = negotiator.ProcessTargetKeys(
        [
            Kv("DefaultTime2Wait", "2"), Kv("DefaultTime2Retain", "0"), Kv("ErrorRecoveryLevel", "0"), Kv("InitialR2T", "Yes"),
            Kv("ImmediateData", "No"), Kv("MaxBurstLength", "262144"), Kv("FirstBurstLength", "65536"), Kv("MaxOutstandingR2T", "1"),
            Kv("MaxConnections", "1"), Kv("DataPDUInOrder", "Yes"), Kv("DataSequenceInOrder", "Yes"),
            Kv("InitiatorRecvDataSegmentLength", "8192"), Kv("TargetRecvDataSegmentLength", "8192"),
            Kv("MaxOutstandingUnexpectedPDUs", "0"), Kv("RDMAExtensions", "Yes"),
        ]);
        Assert.Empty(replies);
        var p = negotiator.Complete();
        Assert.Equal(8192, p.MaxRecvDataSegmentLength);
        Assert.Equal(8192, p.MaxSendDataSegmentLength);
        Assert.Equal(DigestType.None, p.HeaderDigest);
        Assert.Equal(DigestType.None, p.DataDigest);
        Assert.Equal(512 * 1024, p.MaxCommandDataLength);
        Assert.True(p.InitialR2T);
        Assert.False(p.ImmediateData);
        Assert.Equal("Yes", p.TransportKeys["RDMAExtensions"]);
    }

    [Fact]
    public void With_the_core_negotiator_a_discovery_session_stays_plain_iSCSI()
    {
        var keys = Keys();
        var negotiator = new OperationalNegotiator(new OperationalOptions(), isDiscovery: true, keys);
        var offers = negotiator.CreateOffers();
        Assert.Equal("8192", offers.Single(kv => kv.Key == "MaxRecvDataSegmentLength").Value);
        Assert.DoesNotContain(offers, kv => kv.Key == "RDMAExtensions");
        negotiator.ProcessTargetKeys([Kv("MaxRecvDataSegmentLength", "4096"), Kv("DefaultTime2Wait", "2")]);
        var p = negotiator.Complete();
        Assert.Equal(8192, p.MaxRecvDataSegmentLength);
        Assert.Equal(4096, p.MaxSendDataSegmentLength);
    }
}
