namespace IserBlockd.Iscsi;

/// <summary>32-bit serial number arithmetic (RFC 1982) for CmdSN, StatSN and DataSN comparisons.</summary>
public static class SerialNumber
{
    public static bool LessThan(uint a, uint b) => (int)(a - b) < 0;
    public static bool LessThanOrEqual(uint a, uint b) => (int)(a - b) <= 0;
    public static bool GreaterThan(uint a, uint b) => (int)(a - b) > 0;
    public static bool GreaterThanOrEqual(uint a, uint b) => (int)(a - b) >= 0;
}
