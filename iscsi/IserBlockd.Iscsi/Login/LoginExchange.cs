using System.Security.Cryptography;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Security;
using IserBlockd.Iscsi.ConnectionPort;
using Microsoft.Extensions.Logging;
using static IserBlockd.Iscsi.Negotiation.IscsiKeys;

namespace IserBlockd.Iscsi.Login;

/// <summary>
/// The login phase on one connection (RFC 7143 §6.3): security negotiation (AuthMethod None, or CHAP one-way or
/// mutual), operational negotiation, and the switch to full feature phase. A redirection status returns the new
/// portal instead of failing; every other failure status becomes its own exception type.
/// </summary>
public sealed class LoginExchange
{
    public const byte SupportedVersion = 0x00;
    // Our keys are short; responses above this size during login mean a confused peer.
    private const int MaxLoginDataSegment = 65536;
    private const int MaxRounds = 32;

    private readonly IIscsiConnection _connection;
    private readonly LoginSettings _settings;
    private readonly ILogger _logger;
    private readonly byte[] _header = new byte[BasicHeaderSegment.Length];
    private readonly uint _itt = (uint)RandomNumberGenerator.GetInt32(0x1000, 0x7fff_0000);
    private uint _expStatSN;
    private bool _statSNKnown;
    private ushort _tsih;

    public LoginExchange(IIscsiConnection connection, LoginSettings settings, ILogger logger)
    {
        _connection = connection;
        _settings = settings;
        _logger = logger;
        _tsih = settings.Tsih;
        if (settings.SessionType == IscsiSessionType.Normal && string.IsNullOrEmpty(settings.TargetName))
            throw new ArgumentException("a normal session needs a target name", nameof(settings));
        if (settings.TargetChap != null && settings.Chap == null)
            throw new ArgumentException("mutual CHAP needs the initiator's CHAP credentials as well", nameof(settings));
        if (settings.TargetChap != null && settings.TargetChap.Secret.Equals(settings.Chap!.Secret))
            throw new ArgumentException("the target's CHAP secret must differ from the initiator's (RFC 7143 §9.2.1)", nameof(settings));
    }

    public async Task<LoginOutcome> RunAsync(CancellationToken cancellationToken)
    {
        var negotiator = new OperationalNegotiator(_settings.Operational, _settings.SessionType == IscsiSessionType.Discovery, _connection.LoginKeys);

        // Security stage. Without credentials we offer AuthMethod=None and ask to move on at once, like open-iscsi.
        var first = new List<KeyValuePair<string, string>> { new(InitiatorName, _settings.InitiatorName) };
        if (!string.IsNullOrEmpty(_settings.InitiatorAlias)) first.Add(new(InitiatorAlias, _settings.InitiatorAlias));
        first.Add(new(SessionType, _settings.SessionType == IscsiSessionType.Discovery ? "Discovery" : "Normal"));
        if (_settings.SessionType == IscsiSessionType.Normal) first.Add(new(TargetName, _settings.TargetName!));
        var useChap = _settings.Chap != null;
        first.Add(new(AuthMethod, useChap ? "CHAP" : "None"));

        var step = await ExchangeAsync(LoginStage.SecurityNegotiation, transit: !useChap, LoginStage.OperationalNegotiation, first, cancellationToken).ConfigureAwait(false);
        if (step.Redirect is { } early) return early;
        // Declarations of the first response (TargetPortalGroupTag, TargetAlias) count for the session too.
        negotiator.ProcessTargetKeys(step.Keys.Where(k => k.Key is TargetPortalGroupTag or TargetAlias));

        var stage = LoginStage.SecurityNegotiation;
        if (useChap)
        {
            step = await AuthenticateAsync(step, cancellationToken).ConfigureAwait(false);
            if (step.Redirect is { } redirected) return redirected;
        }
        else
        {
            var method = Value(step.Keys, AuthMethod);
            if (method is not null and not "None")
                throw new AuthenticationFailedException($"{_settings.Context} failed: the target requires AuthMethod={method} but no CHAP credentials are configured", 0, 0);
        }

        // The target may need more security rounds before it agrees to leave the stage (rare without CHAP).
        var rounds = 0;
        while (!step.Response.Transit)
        {
            if (++rounds > MaxRounds) throw new LoginParameterException($"{_settings.Context} failed: the target never left the security stage");
            step = await ExchangeAsync(stage, transit: true, LoginStage.OperationalNegotiation, [], cancellationToken).ConfigureAwait(false);
            if (step.Redirect is { } r) return r;
        }
        stage = step.Response.NextStage;

        if (stage == LoginStage.OperationalNegotiation)
        {
            var offers = negotiator.CreateOffers();
            LoginLog.Offering(_logger, _settings.Context, TextKeyValues.ToLogString(offers));
            step = await ExchangeAsync(stage, transit: true, LoginStage.FullFeaturePhase, offers, cancellationToken).ConfigureAwait(false);
            if (step.Redirect is { } r) return r;
            rounds = 0;
            while (true)
            {
                var replies = negotiator.ProcessTargetKeys(step.Keys);
                if (step.Response.Transit) break;
                if (++rounds > MaxRounds) throw new LoginParameterException($"{_settings.Context} failed: operational negotiation did not converge");
                step = await ExchangeAsync(stage, transit: true, LoginStage.FullFeaturePhase, replies, cancellationToken).ConfigureAwait(false);
                if (step.Redirect is { } r2) return r2;
            }
            if (step.Response.NextStage != LoginStage.FullFeaturePhase)
                throw new LoginParameterException($"{_settings.Context} failed: target moved to stage {step.Response.NextStage} instead of full feature phase");
        }
        else if (stage != LoginStage.FullFeaturePhase)
            throw new LoginParameterException($"{_settings.Context} failed: target moved to stage {stage}");

        var parameters = negotiator.Complete();
        if (_tsih == 0) throw new LoginParameterException($"{_settings.Context} failed: the final Login Response carries TSIH 0");
        return new LoginOutcome
        {
            Parameters = parameters,
            Tsih = _tsih,
            ExpStatSN = _expStatSN,
            CmdSN = _settings.InitialCmdSN,
            ExpCmdSN = step.Response.ExpCmdSN,
            MaxCmdSN = step.Response.MaxCmdSN,
        };
    }

    private async Task<Step> AuthenticateAsync(Step step, CancellationToken cancellationToken)
    {
        var chap = _settings.Chap!;
        var method = Value(step.Keys, AuthMethod);
        if (method != "CHAP")
            throw new TargetAuthenticationFailedException($"{_settings.Context} failed: CHAP credentials are configured but the target answered AuthMethod={method ?? "(nothing)"}");

        var algorithms = _settings.ChapAlgorithms.Where(Chap.IsSupported).ToList();
        if (algorithms.Count == 0) throw new ArgumentException("none of the configured CHAP algorithms is available");
        step = await ExchangeAsync(LoginStage.SecurityNegotiation, false, LoginStage.OperationalNegotiation,
            [new(ChapA, Chap.FormatAlgorithms(algorithms))], cancellationToken).ConfigureAwait(false);
        if (step.Redirect != null) return step;

        var chosen = Value(step.Keys, ChapA);
        if (chosen == null || !KeyValueFormat.TryParseNumber(chosen, out var alg) || !algorithms.Contains((ChapAlgorithm)alg))
            throw new AuthenticationFailedException($"{_settings.Context} failed: the target chose CHAP_A={chosen ?? "(nothing)"}, not one of {Chap.FormatAlgorithms(algorithms)}", 0, 0);
        var algorithm = (ChapAlgorithm)alg;
        var idText = Value(step.Keys, ChapI);
        var challengeText = Value(step.Keys, ChapC);
        if (idText == null || !Chap.TryParseIdentifier(idText, out var identifier) || challengeText == null)
            throw new AuthenticationFailedException($"{_settings.Context} failed: the target sent no valid CHAP_I/CHAP_C", 0, 0);
        var challenge = Chap.DecodeBinary(challengeText, ChapC);
        if (challenge.Length is 0 or > 1024)
            throw new AuthenticationFailedException($"{_settings.Context} failed: target challenge of {challenge.Length} bytes", 0, 0);

        var response = Chap.ComputeResponse(algorithm, identifier, chap.Secret, challenge);
        var keys = new List<KeyValuePair<string, string>> { new(ChapN, chap.UserName), new(ChapR, Chap.EncodeHex(response)) };

        byte ourIdentifier = 0;
        byte[]? ourChallenge = null;
        if (_settings.TargetChap != null)
        {
            ourIdentifier = (byte)RandomNumberGenerator.GetInt32(256);
            do ourChallenge = RandomNumberGenerator.GetBytes(Security.Chap.ChallengeLength);
            while (ourChallenge.AsSpan().SequenceEqual(challenge)); // never reflect the target's challenge
            keys.Add(new(ChapI, ourIdentifier.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            keys.Add(new(ChapC, Chap.EncodeHex(ourChallenge)));
        }
        LoginLog.ChapAs(_logger, _settings.Context, algorithm, chap.UserName, _settings.TargetChap != null ? " (mutual)" : "");

        try
        {
            step = await ExchangeAsync(LoginStage.SecurityNegotiation, true, LoginStage.OperationalNegotiation, keys, cancellationToken).ConfigureAwait(false);
        }
        catch (IscsiLoginException e) when (algorithm == ChapAlgorithm.Sha256 && e.StatusClass == LoginStatus.InitiatorError && e.StatusDetail is 0 or 1)
        {
            throw new ChapAlgorithmMismatchException($"{e.Message}; the target chose CHAP_A=7 and refused a SHA-256 response (tgt computes SHA-1 for 7)",
                e.StatusClass, e.StatusDetail, e);
        }
        if (step.Redirect != null) return step;

        if (_settings.TargetChap is { } target)
        {
            var name = Value(step.Keys, ChapN);
            var answer = Value(step.Keys, ChapR);
            if (name == null || answer == null)
                throw new TargetAuthenticationFailedException($"{_settings.Context} failed: mutual CHAP: the target did not answer our challenge (no outgoing account configured on the target?)");
            if (name != target.UserName)
                throw new TargetAuthenticationFailedException($"{_settings.Context} failed: mutual CHAP: the target calls itself '{name}', expected '{target.UserName}'");
            var expected = Chap.ComputeResponse(algorithm, ourIdentifier, target.Secret, ourChallenge);
            var actual = Chap.DecodeBinary(answer, ChapR);
            if (actual.Length != expected.Length)
            {
                var why = $"{_settings.Context} failed: mutual CHAP: the target answered CHAP_A={(int)algorithm} with a {actual.Length}-byte digest, {algorithm} gives {expected.Length}";
                if (algorithm == ChapAlgorithm.Sha256) throw new ChapAlgorithmMismatchException(why + " (tgt computes SHA-1 for 7)", 0, 0);
                throw new TargetAuthenticationFailedException(why);
            }
            if (!CryptographicOperations.FixedTimeEquals(expected, actual))
                throw new TargetAuthenticationFailedException($"{_settings.Context} failed: mutual CHAP: the target's response is wrong (target secret mismatch)");
        }
        return step;
    }

    private readonly record struct Step(LoginResponsePdu Response, List<KeyValuePair<string, string>> Keys, LoginOutcome? Redirect);

    /// <summary>Sends one Login Request and collects the full response (following C-bit continuations).</summary>
    private async Task<Step> ExchangeAsync(LoginStage stage, bool transit, LoginStage next, List<KeyValuePair<string, string>> keys, CancellationToken cancellationToken)
    {
        var data = TextKeyValues.Format(keys);
        if (data.Length > DefaultMaxRecvDataSegmentLength)
            throw new InvalidOperationException($"login keys of {data.Length} bytes do not fit one PDU");
        await SendAsync(stage, transit, next, data, cancellationToken).ConfigureAwait(false);

        var collected = new List<byte>();
        while (true)
        {
            var (response, payload) = await ReceiveAsync(cancellationToken).ConfigureAwait(false);
            if (response.StatusClass == LoginStatus.Redirection)
            {
                var address = Value(TextKeyValues.Parse(payload), TargetAddress);
                if (address == null || !IscsiPortal.TryParse(address, out var portal, out _))
                    throw new TargetRedirectException($"{_settings.Context} failed: redirected without a usable TargetAddress ('{address}')");
                LoginLog.Redirected(_logger, _settings.Context, response.StatusDetail == 2 ? "permanently" : "temporarily", portal);
                return new Step(response, [], new LoginOutcome { RedirectTo = portal, RedirectIsPermanent = response.StatusDetail == 2 });
            }
            if (response.StatusClass != LoginStatus.Success)
                throw LoginStatus.ToException(response.StatusClass, response.StatusDetail, _settings.Context);
            if (response.VersionActive != SupportedVersion)
                throw new UnsupportedVersionException($"{_settings.Context} failed: target speaks iSCSI version 0x{response.VersionActive:x2}; only 0x00 is supported", 0, 0);
            if (response.CurrentStage != stage)
                throw new IscsiProtocolException($"{_settings.Context}: Login Response for stage {response.CurrentStage} while in stage {stage}");
            if (response.Transit && !transit)
                throw new IscsiProtocolException($"{_settings.Context}: target set the T bit although we did not ask to transit");
            if (response.Transit && response.NextStage != next && response.NextStage > next)
                throw new IscsiProtocolException($"{_settings.Context}: target moved to stage {response.NextStage}, beyond the requested {next}");
            collected.AddRange(payload);
            if (collected.Count > MaxLoginDataSegment)
                throw new IscsiProtocolException($"{_settings.Context}: login response text exceeds {MaxLoginDataSegment} bytes");
            if (!response.Continue)
            {
                if (response.Transit && response.NextStage == LoginStage.FullFeaturePhase) _tsih = response.Tsih;
                var parsed = TextKeyValues.Parse(collected.ToArray());
                LoginLog.TargetAnswered(_logger, _settings.Context, TextKeyValues.ToLogString(parsed));
                return new Step(response, parsed, null);
            }
            // More text follows: ask for it with an empty request (RFC 7143 §6.3).
            await SendAsync(stage, false, next, [], cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task SendAsync(LoginStage stage, bool transit, LoginStage next, byte[] data, CancellationToken cancellationToken)
    {
        var pdu = new LoginRequestPdu
        {
            Transit = transit,
            CurrentStage = stage,
            NextStage = next,
            VersionMax = SupportedVersion,
            VersionMin = SupportedVersion,
            DataSegmentLength = data.Length,
            Isid = _settings.Isid,
            Tsih = _tsih,
            InitiatorTaskTag = _itt,
            ConnectionId = _settings.ConnectionId,
            CmdSN = _settings.InitialCmdSN,
            ExpStatSN = _expStatSN,
        };
        pdu.Write(_header);
        await _connection.SendAsync(new OutboundPdu(_header, data), cancellationToken).ConfigureAwait(false);
        await _connection.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<(LoginResponsePdu Response, byte[] Data)> ReceiveAsync(CancellationToken cancellationToken)
    {
        var inbound = await _connection.ReceiveHeaderAsync(cancellationToken).ConfigureAwait(false);
        var opcode = inbound.Opcode;
        var length = inbound.DataSegmentLength;
        if (length > MaxLoginDataSegment)
            throw new IscsiProtocolException($"{_settings.Context}: {opcode} with a {length}-byte data segment during login");
        var data = length > 0 ? (await _connection.ReceiveDataAsync(default, cancellationToken).ConfigureAwait(false)).ToArray() : [];
        if (opcode == IscsiOpcode.Reject)
        {
            var reject = RejectPdu.Read(inbound.Header.Span);
            throw new IscsiLoginException($"{_settings.Context} failed: target rejected the Login Request ({reject.Reason})");
        }
        if (opcode != IscsiOpcode.LoginResponse)
            throw new IscsiProtocolException($"{_settings.Context}: expected a Login Response, got opcode 0x{(byte)opcode:x2}");
        var response = LoginResponsePdu.Read(inbound.Header.Span);
        if (response.InitiatorTaskTag != _itt)
            throw new IscsiProtocolException($"{_settings.Context}: Login Response for ITT 0x{response.InitiatorTaskTag:x8}, expected 0x{_itt:x8}");
        if (response.Isid != _settings.Isid && response.StatusClass == 0)
            throw new IscsiProtocolException($"{_settings.Context}: Login Response carries ISID {response.Isid}, expected {_settings.Isid}");
        if (!_statSNKnown || SerialNumber.GreaterThanOrEqual(response.StatSN, _expStatSN))
        {
            _expStatSN = response.StatSN + 1;
            _statSNKnown = true;
        }
        return (response, data);
    }

    private static string? Value(List<KeyValuePair<string, string>> keys, string key)
    {
        foreach (var kv in keys) if (kv.Key == key) return kv.Value;
        return null;
    }
}
