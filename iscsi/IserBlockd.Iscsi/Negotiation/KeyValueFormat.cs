using System.Globalization;

namespace IserBlockd.Iscsi.Negotiation;

/// <summary>Value encodings of RFC 7143 §6.1: decimal or 0x-hex numbers, Yes/No booleans, comma lists.</summary>
public static class KeyValueFormat
{
    public static bool TryParseNumber(string value, out long number)
    {
        if (value.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return long.TryParse(value.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out number);
        return long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out number);
    }

    public static bool TryParseBoolean(string value, out bool result)
    {
        result = value == IscsiKeys.Yes;
        return value is IscsiKeys.Yes or IscsiKeys.No;
    }

    public static string Format(bool value) => value ? IscsiKeys.Yes : IscsiKeys.No;

    public static string Format(long value) => value.ToString(CultureInfo.InvariantCulture);

    public static string[] SplitList(string value) => value.Split(',', StringSplitOptions.TrimEntries);

    public static string Format(DigestType digest) => digest == DigestType.Crc32C ? "CRC32C" : "None";

    public static bool TryParseDigest(string value, out DigestType digest)
    {
        digest = value switch { "CRC32C" => DigestType.Crc32C, _ => DigestType.None };
        return value is "CRC32C" or "None";
    }
}
