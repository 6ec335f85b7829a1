namespace IserBlockd.Iscsi.Negotiation;

/// <summary>One row of the RFC 7143 §13 key table.</summary>
public sealed record KeyDefinition(
    string Name,
    KeyNegotiationRule Rule,
    KeyUse Use,
    string? Default,
    long Min = 0,
    long Max = 0,
    bool NormalSessionOnly = false,
    bool Security = false)
{
    public bool IsNumeric => Rule is KeyNegotiationRule.Minimum or KeyNegotiationRule.Maximum || (Max > 0);
    public bool IsBoolean => Rule is KeyNegotiationRule.And or KeyNegotiationRule.Or;
}
