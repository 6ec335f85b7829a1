namespace IserBlockd.Iscsi.Negotiation;

/// <summary>Header/data digest algorithms (RFC 7143 §13.1).</summary>
public enum DigestType
{
    None,
    Crc32C,
}
