namespace IserBlockd.Iscsi.Negotiation;

/// <summary>
/// The login/text keys of RFC 7143 §12–13 (plus iSCSIProtocolLevel from RFC 7144) with their negotiation rule,
/// use, default and range. iSER's keys (RFC 7145 §6) are owned by the iSER transport, not listed here.
/// </summary>
public static class IscsiKeys
{
    public const string HeaderDigest = "HeaderDigest";
    public const string DataDigest = "DataDigest";
    public const string MaxConnections = "MaxConnections";
    public const string SendTargets = "SendTargets";
    public const string TargetName = "TargetName";
    public const string InitiatorName = "InitiatorName";
    public const string TargetAlias = "TargetAlias";
    public const string InitiatorAlias = "InitiatorAlias";
    public const string TargetAddress = "TargetAddress";
    public const string TargetPortalGroupTag = "TargetPortalGroupTag";
    public const string InitialR2T = "InitialR2T";
    public const string ImmediateData = "ImmediateData";
    public const string MaxRecvDataSegmentLength = "MaxRecvDataSegmentLength";
    public const string MaxBurstLength = "MaxBurstLength";
    public const string FirstBurstLength = "FirstBurstLength";
    public const string DefaultTime2Wait = "DefaultTime2Wait";
    public const string DefaultTime2Retain = "DefaultTime2Retain";
    public const string MaxOutstandingR2T = "MaxOutstandingR2T";
    public const string DataPduInOrder = "DataPDUInOrder";
    public const string DataSequenceInOrder = "DataSequenceInOrder";
    public const string ErrorRecoveryLevel = "ErrorRecoveryLevel";
    public const string SessionType = "SessionType";
    public const string TaskReporting = "TaskReporting";
    public const string IscsiProtocolLevel = "iSCSIProtocolLevel";
    public const string OFMarker = "OFMarker";
    public const string IFMarker = "IFMarker";
    public const string OFMarkInt = "OFMarkInt";
    public const string IFMarkInt = "IFMarkInt";
    public const string AuthMethod = "AuthMethod";
    public const string ChapA = "CHAP_A";
    public const string ChapI = "CHAP_I";
    public const string ChapC = "CHAP_C";
    public const string ChapN = "CHAP_N";
    public const string ChapR = "CHAP_R";

    public const string Yes = "Yes";
    public const string No = "No";
    public const string NotUnderstood = "NotUnderstood";
    public const string Irrelevant = "Irrelevant";
    public const string Reject = "Reject";

    /// <summary>RFC 7143 §13.12: MaxRecvDataSegmentLength default, also the limit during login.</summary>
    public const int DefaultMaxRecvDataSegmentLength = 8192;

    private static readonly KeyDefinition[] Table =
    [
        new(HeaderDigest, KeyNegotiationRule.List, KeyUse.InitializeOnly, "None"),
        new(DataDigest, KeyNegotiationRule.List, KeyUse.InitializeOnly, "None"),
        new(MaxConnections, KeyNegotiationRule.Minimum, KeyUse.LeadingOnly, "1", 1, 65535, NormalSessionOnly: true),
        new(SendTargets, KeyNegotiationRule.Declarative, KeyUse.FullFeatureOnly, null),
        new(TargetName, KeyNegotiationRule.Declarative, KeyUse.InitializeOnly, null),
        new(InitiatorName, KeyNegotiationRule.Declarative, KeyUse.InitializeOnly, null),
        new(TargetAlias, KeyNegotiationRule.Declarative, KeyUse.Any, null),
        new(InitiatorAlias, KeyNegotiationRule.Declarative, KeyUse.Any, null),
        new(TargetAddress, KeyNegotiationRule.Declarative, KeyUse.Any, null),
        new(TargetPortalGroupTag, KeyNegotiationRule.Declarative, KeyUse.InitializeOnly, null, 0, 65535),
        new(InitialR2T, KeyNegotiationRule.Or, KeyUse.LeadingOnly, Yes, NormalSessionOnly: true),
        new(ImmediateData, KeyNegotiationRule.And, KeyUse.LeadingOnly, Yes, NormalSessionOnly: true),
        new(MaxRecvDataSegmentLength, KeyNegotiationRule.Declarative, KeyUse.Any, "8192", 512, 16777215),
        new(MaxBurstLength, KeyNegotiationRule.Minimum, KeyUse.LeadingOnly, "262144", 512, 16777215, NormalSessionOnly: true),
        new(FirstBurstLength, KeyNegotiationRule.Minimum, KeyUse.LeadingOnly, "65536", 512, 16777215, NormalSessionOnly: true),
        new(DefaultTime2Wait, KeyNegotiationRule.Maximum, KeyUse.LeadingOnly, "2", 0, 3600),
        new(DefaultTime2Retain, KeyNegotiationRule.Minimum, KeyUse.LeadingOnly, "20", 0, 3600),
        new(MaxOutstandingR2T, KeyNegotiationRule.Minimum, KeyUse.LeadingOnly, "1", 1, 65535, NormalSessionOnly: true),
        new(DataPduInOrder, KeyNegotiationRule.Or, KeyUse.LeadingOnly, Yes, NormalSessionOnly: true),
        new(DataSequenceInOrder, KeyNegotiationRule.Or, KeyUse.LeadingOnly, Yes, NormalSessionOnly: true),
        new(ErrorRecoveryLevel, KeyNegotiationRule.Minimum, KeyUse.LeadingOnly, "0", 0, 2),
        new(SessionType, KeyNegotiationRule.Declarative, KeyUse.LeadingOnly, "Normal"),
        new(TaskReporting, KeyNegotiationRule.List, KeyUse.LeadingOnly, "RFC3720", NormalSessionOnly: true),
        new(IscsiProtocolLevel, KeyNegotiationRule.Minimum, KeyUse.LeadingOnly, "0", 0, 31),
        // Markers were dropped by RFC 7143 (§13.25 keeps the keys only so that old peers get an answer).
        new(OFMarker, KeyNegotiationRule.And, KeyUse.InitializeOnly, No),
        new(IFMarker, KeyNegotiationRule.And, KeyUse.InitializeOnly, No),
        new(OFMarkInt, KeyNegotiationRule.Declarative, KeyUse.InitializeOnly, "2048"),
        new(IFMarkInt, KeyNegotiationRule.Declarative, KeyUse.InitializeOnly, "2048"),
        new(AuthMethod, KeyNegotiationRule.List, KeyUse.InitializeOnly, "None", Security: true),
        new(ChapA, KeyNegotiationRule.List, KeyUse.InitializeOnly, null, Security: true),
        new(ChapI, KeyNegotiationRule.Declarative, KeyUse.InitializeOnly, null, Security: true),
        new(ChapC, KeyNegotiationRule.Declarative, KeyUse.InitializeOnly, null, Security: true),
        new(ChapN, KeyNegotiationRule.Declarative, KeyUse.InitializeOnly, null, Security: true),
        new(ChapR, KeyNegotiationRule.Declarative, KeyUse.InitializeOnly, null, Security: true),
    ];

    private static readonly Dictionary<string, KeyDefinition> ByName = Table.ToDictionary(k => k.Name, StringComparer.Ordinal);

    public static IReadOnlyList<KeyDefinition> All => Table;

    public static KeyDefinition? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>True for values that are not a value but a negotiation outcome (RFC 7143 §6.2).</summary>
    public static bool IsSpecialAnswer(string value) => value is NotUnderstood or Irrelevant or Reject;
}
