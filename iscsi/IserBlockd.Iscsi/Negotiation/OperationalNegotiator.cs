using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.ConnectionPort;
using static IserBlockd.Iscsi.Negotiation.IscsiKeys;

namespace IserBlockd.Iscsi.Negotiation;

/// <summary>
/// Operational-stage negotiation from the initiator's side (RFC 7143 §6). We offer every key we care about;
/// the target's answers are checked against each key's rule; keys the target offers on its own are answered by
/// the same rule; unknown keys are answered NotUnderstood; keys never settled take their RFC default.
/// </summary>
public sealed class OperationalNegotiator
{
    private readonly OperationalOptions _options;
    private readonly bool _discovery;
    private readonly ITransportLoginKeys? _transport;
    private readonly Dictionary<string, string> _offers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _transportOffers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _results = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _transportResults = new(StringComparer.Ordinal);
    private int? _targetMaxRecvDataSegmentLength;

    public OperationalNegotiator(OperationalOptions options, bool isDiscovery, ITransportLoginKeys? transport = null)
    {
        options.Validate();
        _options = options;
        _discovery = isDiscovery;
        _transport = transport;
    }

    /// <summary>The keys for the first operational Login Request, in the order open-iscsi sends them.</summary>
    public List<KeyValuePair<string, string>> CreateOffers()
    {
        var o = _options;
        var list = new List<KeyValuePair<string, string>>();
        void Offer(string key, string value)
        {
            if (_transport?.Replaces(key, _discovery) == true) return;
            var def = Find(key)!;
            if (def.NormalSessionOnly && _discovery) return;
            _offers[key] = value;
            list.Add(new(key, value));
        }
        Offer(HeaderDigest, string.Join(',', o.HeaderDigest.Select(KeyValueFormat.Format)));
        Offer(DataDigest, string.Join(',', o.DataDigest.Select(KeyValueFormat.Format)));
        Offer(MaxRecvDataSegmentLength, KeyValueFormat.Format(o.MaxRecvDataSegmentLength));
        Offer(DefaultTime2Wait, KeyValueFormat.Format(o.DefaultTime2Wait));
        Offer(DefaultTime2Retain, KeyValueFormat.Format(o.DefaultTime2Retain));
        Offer(ErrorRecoveryLevel, "0");
        Offer(InitialR2T, KeyValueFormat.Format(o.InitialR2T));
        Offer(ImmediateData, KeyValueFormat.Format(o.ImmediateData));
        Offer(MaxBurstLength, KeyValueFormat.Format(o.MaxBurstLength));
        Offer(FirstBurstLength, KeyValueFormat.Format(o.FirstBurstLength));
        Offer(MaxOutstandingR2T, KeyValueFormat.Format(o.MaxOutstandingR2T));
        Offer(MaxConnections, KeyValueFormat.Format(o.MaxConnections));
        Offer(DataPduInOrder, KeyValueFormat.Format(o.DataPduInOrder));
        Offer(DataSequenceInOrder, KeyValueFormat.Format(o.DataSequenceInOrder));
        if (_transport != null)
            foreach (var kv in _transport.GetOffers(_discovery))
            {
                _transportOffers.Add(kv.Key);
                list.Add(kv);
            }
        return list;
    }

    /// <summary>Applies the keys of one Login Response; returns the answers owed to keys the target offered.</summary>
    public List<KeyValuePair<string, string>> ProcessTargetKeys(IEnumerable<KeyValuePair<string, string>> keys)
    {
        var replies = new List<KeyValuePair<string, string>>();
        foreach (var (key, value) in keys)
        {
            if (_transport != null && _transport.TryAccept(key, value, _transportOffers.Contains(key), out var transportReply))
            {
                _transportResults[key] = transportReply ?? value;
                if (transportReply != null) replies.Add(new(key, transportReply));
                continue;
            }
            var def = Find(key);
            if (def == null)
            {
                // X- and X# keys and future keys: RFC 7143 §6.2 says answer NotUnderstood.
                if (!IsSpecialAnswer(value)) replies.Add(new(key, NotUnderstood));
                continue;
            }
            if (def.Security) continue; // late security keys carry no operational meaning
            if (key == MaxRecvDataSegmentLength)
            {
                if (_transport?.Replaces(key, _discovery) == true) continue;
                _targetMaxRecvDataSegmentLength = (int)ParseNumber(def, value);
                continue;
            }
            if (_offers.TryGetValue(key, out var offered))
                AcceptAnswer(def, offered, value);
            else if (def.Rule == KeyNegotiationRule.Declarative)
                _results[key] = value;
            else
            {
                var answer = AnswerOffer(def, value);
                _results[key] = answer;
                replies.Add(new(key, answer));
            }
        }
        return replies;
    }

    private void AcceptAnswer(KeyDefinition def, string offered, string answer)
    {
        if (IsSpecialAnswer(answer))
        {
            // The key keeps its default. That is fine unless we insisted on a value the default contradicts.
            if (def.Name is HeaderDigest or DataDigest && !offered.Split(',').Contains("None"))
                throw new LoginParameterException($"target answered {def.Name}={answer} but we require {offered}");
            return;
        }
        switch (def.Rule)
        {
            case KeyNegotiationRule.Minimum:
            {
                var ours = ParseNumber(def, offered);
                var theirs = ParseNumber(def, answer);
                if (theirs > ours) throw Violation(def, offered, answer, "a number no larger than the offer");
                _results[def.Name] = answer;
                break;
            }
            case KeyNegotiationRule.Maximum:
            {
                var ours = ParseNumber(def, offered);
                var theirs = ParseNumber(def, answer);
                if (theirs < ours) throw Violation(def, offered, answer, "a number no smaller than the offer");
                _results[def.Name] = answer;
                break;
            }
            case KeyNegotiationRule.And:
            {
                var ours = ParseBoolean(def, offered);
                var theirs = ParseBoolean(def, answer);
                if (!ours && theirs) throw Violation(def, offered, answer, "No (the AND of No is No)");
                _results[def.Name] = KeyValueFormat.Format(ours && theirs);
                break;
            }
            case KeyNegotiationRule.Or:
            {
                var ours = ParseBoolean(def, offered);
                var theirs = ParseBoolean(def, answer);
                if (ours && !theirs) throw Violation(def, offered, answer, "Yes (the OR of Yes is Yes)");
                _results[def.Name] = KeyValueFormat.Format(ours || theirs);
                break;
            }
            case KeyNegotiationRule.List:
                if (!KeyValueFormat.SplitList(offered).Contains(answer))
                    throw Violation(def, offered, answer, "one of the offered values");
                _results[def.Name] = answer;
                break;
            default:
                _results[def.Name] = answer;
                break;
        }
    }

    private string AnswerOffer(KeyDefinition def, string offer)
    {
        switch (def.Rule)
        {
            case KeyNegotiationRule.Minimum:
                return KeyValueFormat.Format(Math.Min(ParseNumber(def, offer), OurPreference(def)));
            case KeyNegotiationRule.Maximum:
                return KeyValueFormat.Format(Math.Max(ParseNumber(def, offer), OurPreference(def)));
            case KeyNegotiationRule.And:
                return KeyValueFormat.Format(ParseBoolean(def, offer) && OurBoolean(def));
            case KeyNegotiationRule.Or:
                return KeyValueFormat.Format(ParseBoolean(def, offer) || OurBoolean(def));
            case KeyNegotiationRule.List:
            {
                var supported = OurList(def);
                foreach (var v in KeyValueFormat.SplitList(offer))
                    if (supported.Contains(v)) return v;
                return Reject;
            }
            default:
                return offer;
        }
    }

    private long OurPreference(KeyDefinition def) => def.Name switch
    {
        MaxBurstLength => _options.MaxBurstLength,
        FirstBurstLength => _options.FirstBurstLength,
        MaxOutstandingR2T => _options.MaxOutstandingR2T,
        DefaultTime2Wait => _options.DefaultTime2Wait,
        DefaultTime2Retain => _options.DefaultTime2Retain,
        MaxConnections => _options.MaxConnections,
        ErrorRecoveryLevel => 0,
        IscsiProtocolLevel => 1, // we implement RFC 7143 (RFC 7144 level 1)
        _ => KeyValueFormat.TryParseNumber(def.Default ?? "0", out var d) ? d : 0,
    };

    private bool OurBoolean(KeyDefinition def) => def.Name switch
    {
        InitialR2T => _options.InitialR2T,
        ImmediateData => _options.ImmediateData,
        DataPduInOrder => _options.DataPduInOrder,
        DataSequenceInOrder => _options.DataSequenceInOrder,
        OFMarker or IFMarker => false,
        _ => def.Default == Yes,
    };

    /// <summary>An unanswered Boolean offer whose value decides the result by itself (AND with No, OR with Yes): RFC 7143
    /// §6.2.2 lets the target leave it unanswered (LIO does: ImmediateData=No gets no reply), and the result is the offer,
    /// not the default.</summary>
    private string? DeterminedByOffer(string key)
    {
        if (!_offers.TryGetValue(key, out var offered)) return null;
        return Find(key)!.Rule switch
        {
            KeyNegotiationRule.And when offered == No => No,
            KeyNegotiationRule.Or when offered == Yes => Yes,
            _ => null,
        };
    }

    private IReadOnlyCollection<string> OurList(KeyDefinition def) => def.Name switch
    {
        HeaderDigest => _options.HeaderDigest.Select(KeyValueFormat.Format).ToArray(),
        DataDigest => _options.DataDigest.Select(KeyValueFormat.Format).ToArray(),
        TaskReporting => ["RFC3720"],
        _ => def.Default is null ? [] : [def.Default],
    };

    /// <summary>The final parameters: negotiated values, RFC defaults for the rest, then the transport's adjustments.</summary>
    public NegotiatedParameters Complete()
    {
        string Get(string key) => _results.GetValueOrDefault(key) ?? DeterminedByOffer(key) ?? Find(key)!.Default!;
        int Number(string key) => (int)ParseNumber(Find(key)!, Get(key));
        bool Boolean(string key) => Get(key) == Yes;
        KeyValueFormat.TryParseDigest(Get(HeaderDigest), out var hd);
        KeyValueFormat.TryParseDigest(Get(DataDigest), out var dd);
        var initialR2T = Boolean(InitialR2T);
        var immediate = Boolean(ImmediateData);
        var maxBurst = Number(MaxBurstLength);
        var firstBurst = Math.Min(Number(FirstBurstLength), maxBurst);
        var erl = Number(ErrorRecoveryLevel);
        if (erl != 0) throw new LoginParameterException($"target negotiated ErrorRecoveryLevel={erl}; only 0 is supported");
        var result = new NegotiatedParameters
        {
            IsDiscovery = _discovery,
            HeaderDigest = hd,
            DataDigest = dd,
            MaxRecvDataSegmentLength = _options.MaxRecvDataSegmentLength,
            MaxSendDataSegmentLength = _targetMaxRecvDataSegmentLength ?? DefaultMaxRecvDataSegmentLength,
            MaxBurstLength = maxBurst,
            FirstBurstLength = firstBurst,
            InitialR2T = initialR2T,
            ImmediateData = immediate,
            MaxOutstandingR2T = Number(MaxOutstandingR2T),
            DataPduInOrder = Boolean(DataPduInOrder),
            DataSequenceInOrder = Boolean(DataSequenceInOrder),
            ErrorRecoveryLevel = erl,
            DefaultTime2Wait = Number(DefaultTime2Wait),
            DefaultTime2Retain = Number(DefaultTime2Retain),
            MaxConnections = Number(MaxConnections),
            TaskReporting = Get(TaskReporting),
            IscsiProtocolLevel = _results.ContainsKey(IscsiProtocolLevel) ? Number(IscsiProtocolLevel) : 0,
            TargetAlias = _results.GetValueOrDefault(TargetAlias),
            TargetPortalGroupTag = _results.TryGetValue(TargetPortalGroupTag, out var tpgt) && KeyValueFormat.TryParseNumber(tpgt, out var tag) ? (int)tag : null,
            TransportKeys = new Dictionary<string, string>(_transportResults),
        };
        return _transport?.Complete(result) ?? result;
    }

    private static long ParseNumber(KeyDefinition def, string value)
    {
        if (!KeyValueFormat.TryParseNumber(value, out var n))
            throw new LoginParameterException($"target sent {def.Name}={value}, which is not a number");
        if (def.Max > 0 && (n < def.Min || n > def.Max))
            throw new LoginParameterException($"target sent {def.Name}={value}, outside {def.Min}..{def.Max}");
        return n;
    }

    private static bool ParseBoolean(KeyDefinition def, string value)
        => KeyValueFormat.TryParseBoolean(value, out var b) ? b
            : throw new LoginParameterException($"target sent {def.Name}={value}, which is not Yes or No");

    private static LoginParameterException Violation(KeyDefinition def, string offered, string answer, string expected)
        => new($"target answered {def.Name}={answer} to our {offered}; the {def.Rule} rule allows only {expected}");
}
