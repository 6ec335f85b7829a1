using System.Text;

namespace IserBlockd.Iscsi.Negotiation;

/// <summary>
/// The data segment of Login and Text PDUs: <c>key=value</c> pairs, each terminated by a NUL (RFC 7143 §6.1).
/// Order is kept and keys may repeat (SendTargets answers repeat TargetName/TargetAddress).
/// </summary>
public static class TextKeyValues
{
    public const int MaxKeyLength = 63;

    public static List<KeyValuePair<string, string>> Parse(ReadOnlySpan<byte> data)
    {
        var result = new List<KeyValuePair<string, string>>();
        while (data.Length > 0)
        {
            var nul = data.IndexOf((byte)0);
            // The last pair must be NUL-terminated; trailing padding NULs produce empty entries that we skip.
            if (nul < 0) throw new IscsiProtocolException($"text data ends without a NUL terminator after '{Truncate(Encoding.UTF8.GetString(data))}'");
            var pair = data[..nul];
            data = data[(nul + 1)..];
            if (pair.IsEmpty) continue;
            var eq = pair.IndexOf((byte)'=');
            if (eq <= 0) throw new IscsiProtocolException($"text item '{Truncate(Encoding.UTF8.GetString(pair))}' is not key=value");
            var key = Encoding.UTF8.GetString(pair[..eq]);
            if (key.Length > MaxKeyLength || !IsValidKey(key))
                throw new IscsiProtocolException($"text key '{Truncate(key)}' is not a valid iSCSI key name");
            result.Add(new(key, Encoding.UTF8.GetString(pair[(eq + 1)..])));
        }
        return result;
    }

    public static byte[] Format(IEnumerable<KeyValuePair<string, string>> pairs)
    {
        var sb = new StringBuilder();
        foreach (var (k, v) in pairs) sb.Append(k).Append('=').Append(v).Append('\0');
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    public static bool IsValidKey(string key)
    {
        foreach (var c in key)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '+' or '@' or '_')) return false;
        return key.Length > 0;
    }

    /// <summary>Formats keys for a log line, hiding CHAP responses and challenges.</summary>
    public static string ToLogString(IEnumerable<KeyValuePair<string, string>> pairs)
        => string.Join(' ', pairs.Select(p => p.Key is "CHAP_R" or "CHAP_C" ? $"{p.Key}=<hidden>" : $"{p.Key}={p.Value}"));

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "...";
}
