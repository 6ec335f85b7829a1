using IserBlockd.Iscsi.Negotiation;

namespace IserBlockd.Iscsi.ConnectionPort;

/// <summary>
/// Login keys that belong to a transport rather than to iSCSI itself. iSER (RFC 7145 §6) offers
/// RDMAExtensions=Yes, InitiatorRecvDataSegmentLength, TargetRecvDataSegmentLength and
/// MaxOutstandingUnexpectedPDUs, and takes over MaxRecvDataSegmentLength on normal sessions.
/// The core calls these during the operational stage of login; TCP has none.
/// </summary>
public interface ITransportLoginKeys
{
    /// <summary>Keys the transport offers in the operational stage, in order.</summary>
    IEnumerable<KeyValuePair<string, string>> GetOffers(bool isDiscovery);

    /// <summary>True for a standard key the transport replaces: the core neither sends it nor applies the target's value.</summary>
    bool Replaces(string standardKey, bool isDiscovery);

    /// <summary>
    /// Offers a key received from the target. Returns false when the key is not the transport's.
    /// <paramref name="weOffered"/> says whether it answers one of <see cref="GetOffers"/>; when the target offered it,
    /// <paramref name="reply"/> is the value to answer with (null when nothing is to be answered).
    /// Throws <see cref="Login.LoginParameterException"/> for an unacceptable value (e.g. RDMAExtensions=No).
    /// </summary>
    bool TryAccept(string key, string value, bool weOffered, out string? reply);

    /// <summary>
    /// Login is complete. Throws <see cref="Login.LoginParameterException"/> when a key the transport needs was not agreed;
    /// returns the parameters with the transport's data segment limits and <see cref="NegotiatedParameters.TransportKeys"/>.
    /// </summary>
    NegotiatedParameters Complete(NegotiatedParameters negotiated);
}
