namespace IserBlockd.Iscsi.Negotiation;

/// <summary>
/// What the initiator offers in operational negotiation. Defaults follow open-iscsi's iscsid.conf: immediate
/// and unsolicited data on, 256 KiB receive segments and first burst, 16 MiB - 512 maximum burst, ERL 0.
/// The target's answer decides the outcome by each key's rule; see <see cref="NegotiatedParameters"/>.
/// </summary>
public sealed record OperationalOptions
{
    /// <summary>Header digests in order of preference. Default None; [Crc32C] requires digests, [Crc32C, None] prefers them.</summary>
    public IReadOnlyList<DigestType> HeaderDigest { get; init; } = [DigestType.None];
    public IReadOnlyList<DigestType> DataDigest { get; init; } = [DigestType.None];
    /// <summary>The largest data segment we accept (declared to the target).</summary>
    public int MaxRecvDataSegmentLength { get; init; } = 262144;
    public int MaxBurstLength { get; init; } = 16776192;
    public int FirstBurstLength { get; init; } = 262144;
    public bool InitialR2T { get; init; }
    public bool ImmediateData { get; init; } = true;
    public int MaxOutstandingR2T { get; init; } = 1;
    public bool DataPduInOrder { get; init; } = true;
    public bool DataSequenceInOrder { get; init; } = true;
    public int DefaultTime2Wait { get; init; } = 2;
    public int DefaultTime2Retain { get; init; }
    public int MaxConnections { get; init; } = 1;

    /// <summary>Checks ranges (RFC 7143 §13); throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        static void Range(string name, long value, long min, long max)
        {
            if (value < min || value > max) throw new ArgumentException($"{name}={value} is outside {min}..{max}", name);
        }
        Range(nameof(MaxRecvDataSegmentLength), MaxRecvDataSegmentLength, 512, 16777215);
        Range(nameof(MaxBurstLength), MaxBurstLength, 512, 16777215);
        Range(nameof(FirstBurstLength), FirstBurstLength, 512, 16777215);
        Range(nameof(MaxOutstandingR2T), MaxOutstandingR2T, 1, 65535);
        Range(nameof(DefaultTime2Wait), DefaultTime2Wait, 0, 3600);
        Range(nameof(DefaultTime2Retain), DefaultTime2Retain, 0, 3600);
        Range(nameof(MaxConnections), MaxConnections, 1, 65535);
        if (FirstBurstLength > MaxBurstLength)
            throw new ArgumentException($"FirstBurstLength={FirstBurstLength} exceeds MaxBurstLength={MaxBurstLength}", nameof(FirstBurstLength));
        if (HeaderDigest.Count == 0) throw new ArgumentException("HeaderDigest needs at least one value", nameof(HeaderDigest));
        if (DataDigest.Count == 0) throw new ArgumentException("DataDigest needs at least one value", nameof(DataDigest));
    }
}
