namespace IserBlockd.Iscsi.Negotiation;

/// <summary>How the outcome of a key is decided (RFC 7143 §6.2).</summary>
public enum KeyNegotiationRule
{
    /// <summary>Each side states its own value; nothing is answered (e.g. MaxRecvDataSegmentLength, TargetAlias).</summary>
    Declarative,
    /// <summary>Numerical: the result is the smaller of offer and answer.</summary>
    Minimum,
    /// <summary>Numerical: the result is the larger of offer and answer.</summary>
    Maximum,
    /// <summary>Boolean: Yes only if both say Yes.</summary>
    And,
    /// <summary>Boolean: Yes if either says Yes.</summary>
    Or,
    /// <summary>List of values in order of preference: the responder picks the first it supports.</summary>
    List,
}

/// <summary>Which phase may carry a key (RFC 7143 "Use").</summary>
public enum KeyUse
{
    /// <summary>Login only (LO), leading connection only when the key is session-wide.</summary>
    LeadingOnly,
    /// <summary>Initialize only (IO): login of any connection.</summary>
    InitializeOnly,
    /// <summary>Any time (ALL), also Text negotiation in full feature phase.</summary>
    Any,
    /// <summary>Full feature phase only (FFPO), e.g. SendTargets.</summary>
    FullFeatureOnly,
}
