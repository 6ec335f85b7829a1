namespace IserBlockd.Daemon.Configuration;

/// <summary>What the initiator proposes for RFC 7143 operational keys. Null means the core's built-in
/// proposal; the negotiated result still follows each key's rule with the target's answer.</summary>
public sealed record OperationalOverrides(
    IReadOnlyList<string>? HeaderDigest = null,
    IReadOnlyList<string>? DataDigest = null,
    int? MaxRecvDataSegmentLength = null,
    int? MaxBurstLength = null,
    int? FirstBurstLength = null,
    bool? ImmediateData = null,
    bool? InitialR2T = null,
    int? MaxOutstandingR2T = null,
    int? QueueDepth = null)
{
    public static OperationalOverrides None { get; } = new();
}
