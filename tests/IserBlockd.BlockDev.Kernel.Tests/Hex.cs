namespace IserBlockd.BlockDev.Kernel.Tests;

/// <summary>Byte vectors written as commented hex: "1c000000 # nlmsg_len" — everything after '#' on a line is ignored.</summary>
internal static class Hex
{
    public static byte[] Parse(string commented)
    {
        var digits = string.Concat(commented.Split('\n').Select(line =>
        {
            var hash = line.IndexOf('#');
            return (hash >= 0 ? line[..hash] : line).Replace(" ", "").Replace("\t", "").Trim();
        }));
        return Convert.FromHexString(digits);
    }
}
