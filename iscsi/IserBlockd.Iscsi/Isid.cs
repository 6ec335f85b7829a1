using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;

namespace IserBlockd.Iscsi;

/// <summary>
/// The 6-byte initiator part of the session identifier (RFC 7143 §11.12.5). A session keeps its ISID across
/// reinstatement: logging in again with the same ISID and TSIH 0 replaces the old session on the target.
/// </summary>
public readonly record struct Isid(ulong Value)
{
    /// <summary>A random-format ISID (T = 10b): 24 random bits in B and C, qualifier D = 0.</summary>
    public static Isid CreateRandom()
    {
        Span<byte> random = stackalloc byte[3];
        RandomNumberGenerator.Fill(random);
        ulong value = 0x80UL << 40 | (ulong)random[0] << 32 | (ulong)random[1] << 24 | (ulong)random[2] << 16;
        return new Isid(value);
    }

    /// <summary>Parses 12 hex digits, optionally with a 0x prefix (open-iscsi prints ISIDs this way).</summary>
    public static Isid Parse(string text)
    {
        var s = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text;
        if (s.Length != 12 || !ulong.TryParse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var value))
            throw new FormatException($"'{text}' is not an ISID (12 hex digits)");
        return new Isid(value);
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)(Value >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(destination[2..], (uint)Value);
    }

    public static Isid Read(ReadOnlySpan<byte> source)
        => new((ulong)BinaryPrimitives.ReadUInt16BigEndian(source) << 32 | BinaryPrimitives.ReadUInt32BigEndian(source[2..]));

    public override string ToString() => (Value & 0xffff_ffff_ffff).ToString("x12", CultureInfo.InvariantCulture);
}
