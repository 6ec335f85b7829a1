namespace IserBlockd.Iscsi.Negotiation;

/// <summary>
/// The outcome of login: every operational key after its rule, the RFC default where a key was not negotiated.
/// The data segment limits are what each side may send: <see cref="MaxSendDataSegmentLength"/> is the target's
/// declared MaxRecvDataSegmentLength (8192 when the target, like tgtd, does not declare it), and
/// <see cref="MaxRecvDataSegmentLength"/> is ours. An iSER transport replaces both with its own keys.
/// </summary>
public sealed record NegotiatedParameters
{
    public bool IsDiscovery { get; init; }
    public DigestType HeaderDigest { get; init; }
    public DigestType DataDigest { get; init; }
    /// <summary>Largest data segment the target accepts from us.</summary>
    public int MaxSendDataSegmentLength { get; init; } = IscsiKeys.DefaultMaxRecvDataSegmentLength;
    /// <summary>Largest data segment we accept from the target.</summary>
    public int MaxRecvDataSegmentLength { get; init; } = IscsiKeys.DefaultMaxRecvDataSegmentLength;
    public int MaxBurstLength { get; init; } = 262144;
    public int FirstBurstLength { get; init; } = 65536;
    public bool InitialR2T { get; init; } = true;
    public bool ImmediateData { get; init; } = true;
    public int MaxOutstandingR2T { get; init; } = 1;
    public bool DataPduInOrder { get; init; } = true;
    public bool DataSequenceInOrder { get; init; } = true;
    public int ErrorRecoveryLevel { get; init; }
    public int DefaultTime2Wait { get; init; } = 2;
    public int DefaultTime2Retain { get; init; } = 20;
    public int MaxConnections { get; init; } = 1;
    public string TaskReporting { get; init; } = "RFC3720";
    public int IscsiProtocolLevel { get; init; }
    public string? TargetAlias { get; init; }
    public int? TargetPortalGroupTag { get; init; }
    /// <summary>
    /// Largest data transfer of one SCSI command the transport carries (0: no limit of its own); a LUN splits larger
    /// reads and writes. iSER sets it: a target moves a command's data with a bounded number of RDMA operations (tgt's
    /// iSER driver at most 512 KiB, which is why the kernel's ib_iser defaults to max_sectors 1024).
    /// </summary>
    public int MaxCommandDataLength { get; init; }

    /// <summary>Keys the transport negotiated for itself (iSER), as finally agreed.</summary>
    public IReadOnlyDictionary<string, string> TransportKeys { get; init; } = new Dictionary<string, string>();

    public override string ToString()
        => $"HeaderDigest={HeaderDigest} DataDigest={DataDigest} MaxRecvDataSegmentLength={MaxRecvDataSegmentLength} " +
           $"TargetMaxRecvDataSegmentLength={MaxSendDataSegmentLength} MaxBurstLength={MaxBurstLength} FirstBurstLength={FirstBurstLength} " +
           $"InitialR2T={YesNo(InitialR2T)} ImmediateData={YesNo(ImmediateData)} MaxOutstandingR2T={MaxOutstandingR2T} " +
           $"ErrorRecoveryLevel={ErrorRecoveryLevel} DefaultTime2Wait={DefaultTime2Wait} DefaultTime2Retain={DefaultTime2Retain}" +
           string.Concat(TransportKeys.Select(k => $" {k.Key}={k.Value}"));

    private static string YesNo(bool b) => b ? "Yes" : "No";
}
