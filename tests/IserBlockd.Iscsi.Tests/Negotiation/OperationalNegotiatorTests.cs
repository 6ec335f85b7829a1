using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Negotiation;

namespace IserBlockd.Iscsi.Tests.Negotiation;

/// <summary>The negotiation rule of every RFC 7143 key, in both directions (answering our offer, and offered by the target).</summary>
public sealed class OperationalNegotiatorTests
{
    private static (OperationalNegotiator Negotiator, Dictionary<string, string> Offers) Start(OperationalOptions? options = null, bool discovery = false)
    {
        var n = new OperationalNegotiator(options ?? new OperationalOptions(), discovery);
        var offers = n.CreateOffers().ToDictionary(k => k.Key, k => k.Value);
        return (n, offers);
    }

    private static NegotiatedParameters Answer(params (string Key, string Value)[] answers)
    {
        var (n, _) = Start();
        Assert.Empty(n.ProcessTargetKeys(answers.Select(a => new KeyValuePair<string, string>(a.Key, a.Value))));
        return n.Complete();
    }

    [Fact]
    public void Offers_follow_open_iscsi_defaults()
    {
        var (_, offers) = Start();
        Assert.Equal("None", offers["HeaderDigest"]);
        Assert.Equal("262144", offers["MaxRecvDataSegmentLength"]);
        Assert.Equal("No", offers["InitialR2T"]);
        Assert.Equal("Yes", offers["ImmediateData"]);
        Assert.Equal("16776192", offers["MaxBurstLength"]);
        Assert.Equal("262144", offers["FirstBurstLength"]);
        Assert.Equal("0", offers["ErrorRecoveryLevel"]);
        Assert.False(offers.ContainsKey("OFMarker")); // obsolete since RFC 7143
    }

    [Fact]
    public void Discovery_sessions_leave_out_keys_irrelevant_to_them()
    {
        var (_, offers) = Start(discovery: true);
        Assert.Equal(["HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength", "DefaultTime2Wait", "DefaultTime2Retain", "ErrorRecoveryLevel"], offers.Keys);
    }

    [Fact]
    public void Unanswered_keys_take_their_rfc_defaults()
    {
        var p = Answer();
        Assert.Equal(8192, p.MaxSendDataSegmentLength);
        Assert.Equal(262144, p.MaxRecvDataSegmentLength); // ours, declared
        Assert.True(p.InitialR2T);
        Assert.True(p.ImmediateData);
        Assert.Equal(262144, p.MaxBurstLength);
        Assert.Equal(65536, p.FirstBurstLength);
        Assert.Equal(1, p.MaxOutstandingR2T);
        Assert.Equal(2, p.DefaultTime2Wait);
        Assert.Equal(20, p.DefaultTime2Retain);
    }

    [Fact]
    public void Minimum_keys()
    {
        Assert.Equal(16384, Answer(("MaxBurstLength", "16384"), ("FirstBurstLength", "8192")).MaxBurstLength);
        Assert.Equal(0, Answer(("DefaultTime2Retain", "0")).DefaultTime2Retain);
        Assert.Throws<LoginParameterException>(() => Answer(("MaxBurstLength", "16776193")));
        Assert.Throws<LoginParameterException>(() => Answer(("MaxOutstandingR2T", "2")));
        Assert.Throws<LoginParameterException>(() => Answer(("MaxBurstLength", "256"))); // below the key's range
        Assert.Throws<LoginParameterException>(() => Answer(("MaxBurstLength", "lots")));
        Assert.Equal(0x4000, Answer(("MaxBurstLength", "0x4000")).MaxBurstLength); // hex numbers are legal
    }

    [Fact]
    public void Maximum_keys()
    {
        Assert.Equal(5, Answer(("DefaultTime2Wait", "5")).DefaultTime2Wait);
        Assert.Throws<LoginParameterException>(() => Answer(("DefaultTime2Wait", "1")));
    }

    [Fact]
    public void Boolean_and_and_or()
    {
        Assert.False(Answer(("ImmediateData", "No")).ImmediateData);
        Assert.True(Answer(("InitialR2T", "Yes")).InitialR2T); // we said No, OR gives Yes
        var (n, _) = Start(new OperationalOptions { ImmediateData = false, InitialR2T = true });
        Assert.Throws<LoginParameterException>(() => n.ProcessTargetKeys([new("ImmediateData", "Yes")]));
        Assert.Throws<LoginParameterException>(() => n.ProcessTargetKeys([new("InitialR2T", "No")]));
        Assert.Throws<LoginParameterException>(() => Answer(("DataPDUInOrder", "maybe")));
    }

    [Fact]
    public void An_unanswered_boolean_offer_that_decides_the_result_is_the_result()
    {
        // LIO leaves ImmediateData=No unanswered (AND with No decides by itself, RFC 7143 §6.2.2): the result is No, not
        // the default Yes; an offer that does not decide (InitialR2T=No under OR) still falls back to the default
        var (n, _) = Start(new OperationalOptions { ImmediateData = false, InitialR2T = false });
        Assert.Empty(n.ProcessTargetKeys([new("MaxBurstLength", "262144")]));
        var p = n.Complete();
        Assert.False(p.ImmediateData);
        Assert.True(p.InitialR2T);
        var (special, _) = Start(new OperationalOptions { ImmediateData = false });
        special.ProcessTargetKeys([new("ImmediateData", "Irrelevant")]);
        Assert.False(special.Complete().ImmediateData);
    }

    [Fact]
    public void List_keys()
    {
        var (n, _) = Start(new OperationalOptions { HeaderDigest = [DigestType.Crc32C, DigestType.None], DataDigest = [DigestType.Crc32C] });
        n.ProcessTargetKeys([new("HeaderDigest", "None"), new("DataDigest", "CRC32C")]);
        var p = n.Complete();
        Assert.Equal((DigestType.None, DigestType.Crc32C), (p.HeaderDigest, p.DataDigest));
        var (strict, _) = Start(new OperationalOptions { DataDigest = [DigestType.Crc32C] });
        Assert.Throws<LoginParameterException>(() => strict.ProcessTargetKeys([new("DataDigest", "None")]));
        var (reject, _) = Start(new OperationalOptions { DataDigest = [DigestType.Crc32C] });
        Assert.Throws<LoginParameterException>(() => reject.ProcessTargetKeys([new("DataDigest", "Reject")]));
    }

    [Fact]
    public void Declarations()
    {
        var p = Answer(("MaxRecvDataSegmentLength", "65536"), ("TargetAlias", "san-a"), ("TargetPortalGroupTag", "3"));
        Assert.Equal(65536, p.MaxSendDataSegmentLength);
        Assert.Equal("san-a", p.TargetAlias);
        Assert.Equal(3, p.TargetPortalGroupTag);
    }

    [Fact]
    public void Special_answers_mean_the_default()
    {
        var p = Answer(("FirstBurstLength", "Irrelevant"), ("MaxOutstandingR2T", "NotUnderstood"), ("MaxBurstLength", "Reject"));
        Assert.Equal(65536, p.FirstBurstLength);
        Assert.Equal(262144, p.MaxBurstLength);
    }

    [Fact]
    public void First_burst_never_exceeds_max_burst()
        => Assert.Equal(16384, Answer(("MaxBurstLength", "16384"), ("FirstBurstLength", "65536")).FirstBurstLength);

    [Fact]
    public void Keys_offered_by_the_target_are_answered_by_their_rule()
    {
        // Nothing offered yet: every key below is the target's offer, which we must answer.
        var n = new OperationalNegotiator(new OperationalOptions { MaxBurstLength = 65536, FirstBurstLength = 65536 }, isDiscovery: false);
        var replies = n.ProcessTargetKeys([
            new("MaxBurstLength", "1048576"), new("DataPDUInOrder", "No"), new("DefaultTime2Wait", "1"),
            new("OFMarker", "Yes"), new("TaskReporting", "FastAbort,RFC3720"), new("iSCSIProtocolLevel", "2"),
            new("X#com.example.Vendor", "1"), new("FutureKey", "x"),
        ]);
        Assert.Equal(new Dictionary<string, string>
        {
            ["MaxBurstLength"] = "65536", ["DataPDUInOrder"] = "Yes", ["DefaultTime2Wait"] = "2", ["OFMarker"] = "No",
            ["TaskReporting"] = "RFC3720", ["iSCSIProtocolLevel"] = "1", ["X#com.example.Vendor"] = "NotUnderstood", ["FutureKey"] = "NotUnderstood",
        }, replies.ToDictionary(r => r.Key, r => r.Value));
    }

    [Fact]
    public void Only_error_recovery_level_zero()
    {
        var (n, _) = Start();
        n.ProcessTargetKeys([new("ErrorRecoveryLevel", "0")]);
        Assert.Equal(0, n.Complete().ErrorRecoveryLevel);
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new OperationalNegotiator(new OperationalOptions { MaxRecvDataSegmentLength = 100 }, false));
        Assert.Throws<ArgumentException>(() => new OperationalNegotiator(new OperationalOptions { FirstBurstLength = 1 << 20, MaxBurstLength = 65536 }, false));
        Assert.Throws<ArgumentException>(() => new OperationalNegotiator(new OperationalOptions { HeaderDigest = [] }, false));
    }

    [Fact]
    public void The_key_table_covers_rfc7143()
    {
        string[] expected =
        [
            "HeaderDigest", "DataDigest", "MaxConnections", "SendTargets", "TargetName", "InitiatorName", "TargetAlias", "InitiatorAlias",
            "TargetAddress", "TargetPortalGroupTag", "InitialR2T", "ImmediateData", "MaxRecvDataSegmentLength", "MaxBurstLength",
            "FirstBurstLength", "DefaultTime2Wait", "DefaultTime2Retain", "MaxOutstandingR2T", "DataPDUInOrder", "DataSequenceInOrder",
            "ErrorRecoveryLevel", "SessionType", "TaskReporting", "iSCSIProtocolLevel", "AuthMethod",
        ];
        Assert.All(expected, k => Assert.NotNull(IscsiKeys.Find(k)));
        Assert.Equal(KeyNegotiationRule.Or, IscsiKeys.Find("InitialR2T")!.Rule);
        Assert.Equal(KeyNegotiationRule.And, IscsiKeys.Find("ImmediateData")!.Rule);
        Assert.Equal(KeyNegotiationRule.Maximum, IscsiKeys.Find("DefaultTime2Wait")!.Rule);
        Assert.Equal(KeyNegotiationRule.Declarative, IscsiKeys.Find("MaxRecvDataSegmentLength")!.Rule);
    }
}
