using System.Security.Cryptography;

namespace IserBlockd.Iscsi.Security;

/// <summary>
/// A CHAP secret: raw bytes (RFC 1994 allows any octets). Never printed: <see cref="ToString"/> is a placeholder,
/// so a secret cannot end up in a log line by accident.
/// </summary>
public sealed class ChapSecret : IEquatable<ChapSecret>
{
    private readonly byte[] _bytes;

    public ChapSecret(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) throw new ArgumentException("a CHAP secret cannot be empty");
        _bytes = bytes.ToArray();
    }

    public static ChapSecret FromString(string secret) => new(System.Text.Encoding.UTF8.GetBytes(secret));

    public int Length => _bytes.Length;

    internal ReadOnlySpan<byte> Bytes => _bytes;

    public bool Equals(ChapSecret? other) => other != null && CryptographicOperations.FixedTimeEquals(_bytes, other._bytes);

    public override bool Equals(object? obj) => Equals(obj as ChapSecret);

    public override int GetHashCode() => _bytes.Length;

    public override string ToString() => "(secret)";
}

/// <summary>A CHAP user name and secret. The record's printed form hides the secret.</summary>
public sealed record ChapCredentials(string UserName, ChapSecret Secret);
