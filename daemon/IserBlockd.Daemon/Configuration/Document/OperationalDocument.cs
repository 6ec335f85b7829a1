namespace IserBlockd.Daemon.Configuration.Document;

/// <summary>What the initiator proposes for RFC 7143 operational keys; absent means the built-in proposal.</summary>
public sealed class OperationalDocument
{
    public string? HeaderDigest { get; set; }
    public string? DataDigest { get; set; }
    public int? MaxRecvDataSegmentLength { get; set; }
    public int? MaxBurstLength { get; set; }
    public int? FirstBurstLength { get; set; }
    public bool? ImmediateData { get; set; }
    public bool? InitialR2T { get; set; }
    public int? MaxOutstandingR2T { get; set; }
    public int? QueueDepth { get; set; }
}
