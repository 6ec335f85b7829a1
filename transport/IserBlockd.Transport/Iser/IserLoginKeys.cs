using System.Globalization;
using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.ConnectionPort;

namespace IserBlockd.Transport.Iser;

/// <summary>
/// The login keys iSER adds (RFC 7145 §6): on a normal session we offer, as open-iscsi does for its iser transport,
/// InitiatorRecvDataSegmentLength (what one of our posted receive buffers holds), TargetRecvDataSegmentLength (what
/// one of our send descriptors holds), MaxOutstandingUnexpectedPDUs (the receive buffers we keep for PDUs the target
/// sends on its own) and RDMAExtensions=Yes; these replace MaxRecvDataSegmentLength. A discovery session stays plain
/// iSCSI over the iSER connection, as open-iscsi does: it declares MaxRecvDataSegmentLength = our receive buffer.
/// Digests are never used over iSER (the RDMA transport checks integrity itself), so the digest keys are ours as well.
/// Targets answer the two segment lengths by the minimum rule (tgt) or declaratively (the RFC); either way we use the
/// smaller of both sides, which never exceeds what we posted.
/// </summary>
public sealed class IserLoginKeys : ITransportLoginKeys
{
    public const string RdmaExtensions = "RDMAExtensions";
    public const string InitiatorRecvDataSegmentLength = "InitiatorRecvDataSegmentLength";
    public const string TargetRecvDataSegmentLength = "TargetRecvDataSegmentLength";
    public const string MaxOutstandingUnexpectedPdus = "MaxOutstandingUnexpectedPDUs";
    private const int MinSegment = 512;
    private const int MaxSegment = 16777215;

    private readonly int _receiveCapacity;
    private readonly int _sendCapacity;
    private readonly int _unexpectedReserve;
    private readonly int _maxCommandDataLength;
    private bool _discovery;
    private bool _rdmaAgreed;
    private bool _rdmaAnswered;
    private int? _targetMaxRecv;

    /// <param name="receiveDataCapacity">Data bytes one posted receive buffer holds (after the iSER header, BHS and AHS room).</param>
    /// <param name="sendDataCapacity">Data bytes one send descriptor holds.</param>
    /// <param name="unexpectedReserve">Receive buffers kept for PDUs the target sends unasked (NOP-In pings, asynchronous messages).</param>
    /// <param name="maxCommandDataLength">Largest data transfer of one command (0: none), passed on as <see cref="NegotiatedParameters.MaxCommandDataLength"/>.</param>
    public IserLoginKeys(int receiveDataCapacity, int sendDataCapacity, int unexpectedReserve, int maxCommandDataLength = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(receiveDataCapacity, MinSegment);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(receiveDataCapacity, MaxSegment);
        ArgumentOutOfRangeException.ThrowIfLessThan(sendDataCapacity, MinSegment);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(sendDataCapacity, MaxSegment);
        ArgumentOutOfRangeException.ThrowIfLessThan(unexpectedReserve, 2); // RFC 7145: 2 or more (or 0, which we never declare)
        _receiveCapacity = receiveDataCapacity;
        _sendCapacity = sendDataCapacity;
        _unexpectedReserve = unexpectedReserve;
        _maxCommandDataLength = maxCommandDataLength;
        ReceiveDataSegmentLength = receiveDataCapacity;
        SendDataSegmentLength = IscsiKeys.DefaultMaxRecvDataSegmentLength;
    }

    /// <summary>Largest data segment the target may send us (agreed InitiatorRecvDataSegmentLength, or our MaxRecvDataSegmentLength on discovery).</summary>
    public int ReceiveDataSegmentLength { get; private set; }

    /// <summary>Largest data segment we may send (agreed TargetRecvDataSegmentLength, or the target's MaxRecvDataSegmentLength on discovery).</summary>
    public int SendDataSegmentLength { get; private set; }

    /// <summary>The target's MaxOutstandingUnexpectedPDUs: control PDUs we may have outstanding at once (0: no declared limit).</summary>
    public long TargetUnexpectedPduLimit { get; private set; }

    /// <summary>The target refused RDMAExtensions=Yes: it does not speak iSER on this portal (TCP may work).</summary>
    public bool TargetRefusedRdma { get; private set; }

    /// <summary>What the target answered to RDMAExtensions, for the refusal message.</summary>
    public string? RdmaAnswer { get; private set; }

    public IEnumerable<KeyValuePair<string, string>> GetOffers(bool isDiscovery)
    {
        _discovery = isDiscovery;
        if (isDiscovery)
        {
            return [new(IscsiKeys.MaxRecvDataSegmentLength, KeyValueFormat.Format(_receiveCapacity))];
        }
        return
        [
            new(InitiatorRecvDataSegmentLength, KeyValueFormat.Format(_receiveCapacity)),
            new(TargetRecvDataSegmentLength, KeyValueFormat.Format(_sendCapacity)),
            new(MaxOutstandingUnexpectedPdus, KeyValueFormat.Format(_unexpectedReserve)),
            new(RdmaExtensions, IscsiKeys.Yes),
        ];
    }

    public bool Replaces(string standardKey, bool isDiscovery) =>
        standardKey is IscsiKeys.MaxRecvDataSegmentLength or IscsiKeys.HeaderDigest or IscsiKeys.DataDigest;

    public bool TryAccept(string key, string value, bool weOffered, out string? reply)
    {
        reply = null;
        switch (key)
        {
            case RdmaExtensions:
                RdmaAnswer = value;
                _rdmaAnswered = true;
                if (_discovery)
                {
                    // Discovery stays plain iSCSI framing over the iSER connection.
                    if (!weOffered) reply = IscsiKeys.No;
                    return true;
                }
                if (value == IscsiKeys.Yes)
                {
                    _rdmaAgreed = true;
                    if (!weOffered) reply = IscsiKeys.Yes;
                    return true;
                }
                TargetRefusedRdma = true;
                throw new LoginParameterException(
                    $"the target answered RDMAExtensions={value}: it does not accept iSER on this portal (use the TCP transport, or enable iSER on the target)");

            case InitiatorRecvDataSegmentLength:
                if (IscsiKeys.IsSpecialAnswer(value)) return true; // NotUnderstood/Irrelevant: the default 8192 stands, and our buffers hold more
                ReceiveDataSegmentLength = Math.Min(_receiveCapacity, ParseSegment(key, value));
                if (!weOffered) reply = KeyValueFormat.Format(ReceiveDataSegmentLength);
                return true;

            case TargetRecvDataSegmentLength:
                if (IscsiKeys.IsSpecialAnswer(value)) return true;
                SendDataSegmentLength = Math.Min(_sendCapacity, ParseSegment(key, value));
                if (!weOffered) reply = KeyValueFormat.Format(SendDataSegmentLength);
                return true;

            case MaxOutstandingUnexpectedPdus:
                if (IscsiKeys.IsSpecialAnswer(value)) return true;
                if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) || limit is 1 or > uint.MaxValue)
                    throw new LoginParameterException($"target sent {key}={value}; expected 0 or 2..4294967295");
                TargetUnexpectedPduLimit = limit;
                if (!weOffered) reply = KeyValueFormat.Format(_unexpectedReserve);
                return true;

            case IscsiKeys.MaxRecvDataSegmentLength:
                // Declarative: on discovery it bounds what we send; on a normal iSER session it is irrelevant.
                if (!IscsiKeys.IsSpecialAnswer(value)) _targetMaxRecv = ParseSegment(key, value);
                return true;

            case IscsiKeys.HeaderDigest:
            case IscsiKeys.DataDigest:
                // We never offer digests over iSER; if the target offers them, only None is acceptable.
                if (weOffered || IscsiKeys.IsSpecialAnswer(value)) return true;
                if (KeyValueFormat.SplitList(value).Contains(KeyValueFormat.Format(DigestType.None)))
                {
                    reply = KeyValueFormat.Format(DigestType.None);
                    return true;
                }
                throw new LoginParameterException($"the target requires {key}={value}, but iSER carries no digests (RFC 7145)");

            default:
                return false;
        }
    }

    public NegotiatedParameters Complete(NegotiatedParameters negotiated)
    {
        if (_discovery)
        {
            ReceiveDataSegmentLength = _receiveCapacity;
            SendDataSegmentLength = Math.Min(_sendCapacity, _targetMaxRecv ?? IscsiKeys.DefaultMaxRecvDataSegmentLength);
        }
        else if (!_rdmaAgreed)
        {
            TargetRefusedRdma = true;
            throw new LoginParameterException(_rdmaAnswered
                ? $"the target answered RDMAExtensions={RdmaAnswer}: it does not accept iSER on this portal"
                : "the target never answered RDMAExtensions=Yes: it does not speak iSER on this portal (use the TCP transport)");
        }
        return negotiated with
        {
            MaxRecvDataSegmentLength = ReceiveDataSegmentLength,
            MaxSendDataSegmentLength = SendDataSegmentLength,
            HeaderDigest = DigestType.None,
            DataDigest = DigestType.None,
            MaxCommandDataLength = _maxCommandDataLength,
        };
    }

    private static int ParseSegment(string key, string value)
    {
        if (!KeyValueFormat.TryParseNumber(value, out var n) || n < MinSegment || n > MaxSegment)
            throw new LoginParameterException($"target sent {key}={value}; expected a number from {MinSegment} to {MaxSegment}");
        return (int)n;
    }
}
