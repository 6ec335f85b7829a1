using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Security;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Iscsi.Tests.Fakes;
using IserBlockd.Iscsi.ConnectionPort;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Sessions;

/// <summary>Login outcomes against the fake target: every failure class, redirection, CHAP algorithms, negotiation.</summary>
public sealed class LoginBehaviourTests(ITestOutputHelper output)
{
    public static TheoryData<byte, byte, Type, string> Failures => new()
    {
        { 2, 1, typeof(AuthenticationFailedException), "authentication failure" },
        { 2, 2, typeof(AuthorizationFailedException), "authorization failure" },
        { 2, 3, typeof(TargetNotFoundException), "target not found" },
        { 2, 4, typeof(TargetNotFoundException), "target removed" },
        { 2, 5, typeof(UnsupportedVersionException), "unsupported version" },
        { 2, 6, typeof(TargetBusyException), "too many connections" },
        { 2, 7, typeof(LoginParameterException), "missing parameter" },
        { 2, 9, typeof(LoginParameterException), "session type not supported" },
        { 2, 11, typeof(LoginParameterException), "invalid request during login" },
        { 3, 0, typeof(IscsiLoginException), "target error" },
        { 3, 1, typeof(TargetBusyException), "service unavailable" },
        { 3, 2, typeof(TargetBusyException), "out of resources" },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task Each_login_status_has_its_exception(byte statusClass, byte detail, Type type, string text)
    {
        var bed = new FakeTargetBed(output, t => t.LoginFailure = (statusClass, detail));
        var e = await Assert.ThrowsAnyAsync<IscsiLoginException>(() => bed.LoginAsync());
        Assert.Equal(type, e.GetType());
        Assert.Equal($"login to {bed.Target.Name} at 192.0.2.1:3260 failed: {text} (status 0x{statusClass:x2}{detail:x2})", e.Message.Split(';')[0]);
        Assert.Equal(statusClass, e.StatusClass);
        Assert.Equal(detail, e.StatusDetail);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Redirection_is_followed(bool permanent)
    {
        var bed = new FakeTargetBed(output, t => t.Redirect = ("[2001:db8::99]:3270", permanent));
        var real = new FakeTarget { Name = bed.Target.Name };
        bed.Transport.Listen(new IscsiPortal("2001:db8::99", 3270), real);
        await using var session = await bed.LoginAsync(bed.Options() with { RetainCommandsOnConnectionLoss = true });
        Assert.Equal("[2001:db8::99]:3270", session.Portal.Address);
        Assert.Equal(1, real.Logins);
        Assert.Contains(bed.Logs.Lines, l => l.Contains(permanent ? "moved permanently" : "moved temporarily"));

        // After a loss, a permanent redirection is remembered; a temporary one sends us back to the original portal.
        real.LastConnection.Side.Close();
        await Wait.Until(() => session.State == IscsiSessionState.ConnectionLost);
        var redirectorLogins = bed.CountReceived(p => p.Opcode == IscsiOpcode.LoginRequest);
        await session.ReinstateAsync();
        Assert.Equal(2, real.Logins);
        Assert.Equal(permanent ? redirectorLogins : redirectorLogins + 1, bed.CountReceived(p => p.Opcode == IscsiOpcode.LoginRequest));
    }

    [Fact]
    public async Task Redirection_loops_end()
    {
        var bed = new FakeTargetBed(output, t => t.Redirect = ("192.0.2.1:3260", false));
        var e = await Assert.ThrowsAsync<TargetRedirectException>(() => bed.LoginAsync(bed.Options() with { MaxRedirects = 3 }));
        Assert.Contains("more than 3 redirections", e.Message);
    }

    [Theory]
    [InlineData(new[] { ChapAlgorithm.Sha256, ChapAlgorithm.Md5 }, new[] { 7, 5 }, 7)]
    [InlineData(new[] { ChapAlgorithm.Sha256, ChapAlgorithm.Md5 }, new[] { 5 }, 5)]
    [InlineData(new[] { ChapAlgorithm.Sha1 }, new[] { 6 }, 6)]
    public async Task Mutual_chap_with_each_algorithm(ChapAlgorithm[] offered, int[] accepted, int expected)
    {
        var bed = new FakeTargetBed(output, t =>
        {
            t.Chap = ("alice", "alice-secret-0123");
            t.MutualChap = ("target", "target-secret-456");
            t.ChapAlgorithms = accepted;
        });
        await using var session = await bed.LoginAsync(bed.Options() with
        {
            Chap = new ChapCredentials("alice", ChapSecret.FromString("alice-secret-0123")),
            TargetChap = new ChapCredentials("target", ChapSecret.FromString("target-secret-456")),
            ChapAlgorithms = offered,
        });
        Assert.Equal(string.Join(',', offered.Select(a => (int)a)), bed.Target.LastConnection.InitiatorKeys["CHAP_A"]);
        var chosen = bed.Target.Received.Where(p => p.Opcode == IscsiOpcode.LoginRequest).Select(p => TextKeyValues.Parse(p.Data))
            .First(k => k.Any(kv => kv.Key == "CHAP_R"));
        var responseLength = Chap.DecodeBinary(chosen.Single(k => k.Key == "CHAP_R").Value, "CHAP_R").Length;
        Assert.Equal(expected switch { 5 => 16, 6 => 20, _ => 32 }, responseLength);
    }

    [Fact]
    public async Task A_target_impersonator_fails_mutual_chap()
    {
        var bed = new FakeTargetBed(output, t =>
        {
            t.Chap = ("alice", "alice-secret-0123");
            t.MutualChap = ("target", "an-impostor-secret");
        });
        var e = await Assert.ThrowsAsync<TargetAuthenticationFailedException>(() => bed.LoginAsync(bed.Options() with
        {
            Chap = new ChapCredentials("alice", ChapSecret.FromString("alice-secret-0123")),
            TargetChap = new ChapCredentials("target", ChapSecret.FromString("target-secret-456")),
        }));
        Assert.Contains("target secret mismatch", e.Message);
    }

    [Fact]
    public async Task Credentials_against_a_target_without_chap_are_refused()
    {
        var bed = new FakeTargetBed(output);
        var e = await Assert.ThrowsAsync<AuthenticationFailedException>(() => bed.LoginAsync(bed.Options() with
        {
            Chap = new ChapCredentials("alice", ChapSecret.FromString("alice-secret-0123")),
        }));
        Assert.Equal(0x0201, e.Status);
    }

    [Fact]
    public async Task Missing_max_recv_data_segment_length_means_8192()
    {
        var omitted = new FakeTargetBed(output);
        await using (var session = await omitted.LoginAsync()) Assert.Equal(8192, session.Parameters.MaxSendDataSegmentLength);
        var declared = new FakeTargetBed(output, t => t.MaxRecvDataSegmentLength = 65536);
        await using (var session = await declared.LoginAsync()) Assert.Equal(65536, session.Parameters.MaxSendDataSegmentLength);
    }

    [Fact]
    public async Task An_answer_against_the_rule_fails_the_login()
    {
        var bed = new FakeTargetBed(output, t => t.Answers["MaxBurstLength"] = "99999999");
        var e = await Assert.ThrowsAsync<LoginParameterException>(() => bed.LoginAsync(bed.Options(new OperationalOptions { MaxBurstLength = 65536, FirstBurstLength = 65536 })));
        Assert.Contains("MaxBurstLength", e.Message);
    }

    [Fact]
    public async Task Keys_the_target_offers_are_answered()
    {
        var bed = new FakeTargetBed(output, t =>
        {
            t.TargetOffers.Add(new("X-com.example.Tuning", "fast"));
            t.TargetOffers.Add(new("IFMarker", "Yes"));
            t.TargetOffers.Add(new("TaskReporting", "FastAbort,RFC3720"));
        });
        await using var session = await bed.LoginAsync();
        var requests = bed.Target.Received.Where(p => p.Opcode == IscsiOpcode.LoginRequest).Select(p => TextKeyValues.Parse(p.Data)).ToList();
        var answers = requests.Last().ToDictionary(k => k.Key, k => k.Value);
        Assert.Equal("NotUnderstood", answers["X-com.example.Tuning"]);
        Assert.Equal("No", answers["IFMarker"]); // AND with our No
        Assert.Equal("RFC3720", answers["TaskReporting"]); // the first value we support
        Assert.Equal("RFC3720", session.Parameters.TaskReporting);
    }

    private sealed class FakeIserKeys : ITransportLoginKeys
    {
        public bool RefusedRdma;
        public IEnumerable<KeyValuePair<string, string>> GetOffers(bool isDiscovery) =>
            isDiscovery ? [] : [new("RDMAExtensions", "Yes"), new("InitiatorRecvDataSegmentLength", "8192"), new("TargetRecvDataSegmentLength", "4096")];

        public bool Replaces(string standardKey, bool isDiscovery) => !isDiscovery && standardKey == IscsiKeys.MaxRecvDataSegmentLength;

        public bool TryAccept(string key, string value, bool weOffered, out string? reply)
        {
            reply = null;
            if (key == "RDMAExtensions")
            {
                if (value != "Yes") { RefusedRdma = true; throw new LoginParameterException("the target refused RDMAExtensions=Yes"); }
                return true;
            }
            return key is "InitiatorRecvDataSegmentLength" or "TargetRecvDataSegmentLength";
        }

        public NegotiatedParameters Complete(NegotiatedParameters negotiated)
            => negotiated with { MaxSendDataSegmentLength = 4096, MaxRecvDataSegmentLength = 8192 };
    }

    [Fact]
    public async Task Transport_login_keys_take_part_in_negotiation()
    {
        var bed = new FakeTargetBed(output, t =>
        {
            t.Answers["RDMAExtensions"] = "Yes";
            t.Answers["InitiatorRecvDataSegmentLength"] = "8192";
            t.Answers["TargetRecvDataSegmentLength"] = "4096";
        });
        bed.Transport.LoginKeys = () => new FakeIserKeys();
        await using var session = await bed.LoginAsync();
        var keys = bed.Target.LastConnection.InitiatorKeys;
        Assert.Equal("Yes", keys["RDMAExtensions"]);
        Assert.False(keys.ContainsKey("MaxRecvDataSegmentLength"));
        Assert.Equal(4096, session.Parameters.MaxSendDataSegmentLength);
        Assert.Equal("Yes", session.Parameters.TransportKeys["RDMAExtensions"]);
        Assert.Equal(session.Parameters, bed.Transport.Connections.Single().FullFeature!.Parameters);

        var refusing = new FakeTargetBed(output, t => t.Answers["RDMAExtensions"] = "No");
        refusing.Transport.LoginKeys = () => new FakeIserKeys();
        var e = await Assert.ThrowsAsync<LoginParameterException>(() => refusing.LoginAsync());
        Assert.Contains("RDMAExtensions", e.Message);
    }
}
