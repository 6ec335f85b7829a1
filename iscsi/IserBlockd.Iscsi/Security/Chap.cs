using System.Globalization;
using System.Security.Cryptography;
using IserBlockd.Iscsi.Login;

namespace IserBlockd.Iscsi.Security;

/// <summary>
/// CHAP computations (RFC 1994): response = H(identifier || secret || challenge), and the encodings of
/// RFC 7143 §6.1 for binary values (0x hex or 0b base64).
/// </summary>
public static class Chap
{
    /// <summary>Challenge length we send for mutual CHAP (RFC 7143 §12.1.3 recommends at least the digest length).</summary>
    public const int ChallengeLength = 32;

    public static byte[] ComputeResponse(ChapAlgorithm algorithm, byte identifier, ChapSecret secret, ReadOnlySpan<byte> challenge)
    {
        var input = new byte[1 + secret.Length + challenge.Length];
        input[0] = identifier;
        secret.Bytes.CopyTo(input.AsSpan(1));
        challenge.CopyTo(input.AsSpan(1 + secret.Length));
        try
        {
            return algorithm switch
            {
                ChapAlgorithm.Md5 => MD5.HashData(input),
                ChapAlgorithm.Sha1 => SHA1.HashData(input),
                ChapAlgorithm.Sha256 => SHA256.HashData(input),
                ChapAlgorithm.Sha3_256 when SHA3_256.IsSupported => SHA3_256.HashData(input),
                _ => throw new LoginParameterException($"CHAP algorithm {(int)algorithm} is not supported here"),
            };
        }
        finally
        {
            CryptographicOperations.ZeroMemory(input);
        }
    }

    public static bool IsSupported(ChapAlgorithm algorithm)
        => algorithm is ChapAlgorithm.Md5 or ChapAlgorithm.Sha1 or ChapAlgorithm.Sha256 || (algorithm == ChapAlgorithm.Sha3_256 && SHA3_256.IsSupported);

    public static string EncodeHex(ReadOnlySpan<byte> bytes) => "0x" + Convert.ToHexStringLower(bytes);

    /// <summary>Decodes a binary value: 0x/0X hex (odd digit counts allowed) or 0b/0B base64.</summary>
    public static byte[] DecodeBinary(string value, string key)
    {
        if (value.Length > 2 && value[0] == '0' && value[1] is 'x' or 'X')
        {
            var hex = value[2..];
            if (hex.Length % 2 == 1) hex = "0" + hex;
            try { return Convert.FromHexString(hex); }
            catch (FormatException) { throw new TargetAuthenticationFailedException($"{key} is not valid hex"); }
        }
        if (value.Length > 2 && value[0] == '0' && value[1] is 'b' or 'B')
        {
            try { return Convert.FromBase64String(value[2..]); }
            catch (FormatException) { throw new TargetAuthenticationFailedException($"{key} is not valid base64"); }
        }
        throw new TargetAuthenticationFailedException($"{key} is neither 0x-hex nor 0b-base64");
    }

    public static bool TryParseIdentifier(string value, out byte identifier)
    {
        identifier = 0;
        if (!Negotiation.KeyValueFormat.TryParseNumber(value, out var n) || n is < 0 or > 255) return false;
        identifier = (byte)n;
        return true;
    }

    public static string FormatAlgorithms(IEnumerable<ChapAlgorithm> algorithms)
        => string.Join(',', algorithms.Select(a => ((int)a).ToString(CultureInfo.InvariantCulture)));
}
