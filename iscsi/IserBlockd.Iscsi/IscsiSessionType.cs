namespace IserBlockd.Iscsi;

/// <summary>SessionType key (RFC 7143 §13.21).</summary>
public enum IscsiSessionType
{
    Normal,
    Discovery,
}
