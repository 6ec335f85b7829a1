namespace IserBlockd.TestSupport;

/// <summary>Byte vectors written as hex with any spacing, one field a line if wished, and comments after '#':
/// "1c000000 # nlmsg_len" or "25 60 95 13".</summary>
public static class Hex
{
    public static byte[] Bytes(string hex) =>
        Convert.FromHexString(string.Concat(hex.Split('\n').SelectMany(line =>
        {
            var hash = line.IndexOf('#');
            return (hash >= 0 ? line[..hash] : line).Where(Uri.IsHexDigit);
        })));
}
