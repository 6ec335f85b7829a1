namespace IserBlockd.BlockDev.Tests.Support;

internal static class Hex
{
    /// <summary>Bytes from hex with any spacing: "25 60 95 13".</summary>
    public static byte[] Bytes(string hex) => Convert.FromHexString(string.Concat(hex.Where(Uri.IsHexDigit)));
}
