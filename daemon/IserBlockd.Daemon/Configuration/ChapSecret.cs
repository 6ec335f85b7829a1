namespace IserBlockd.Daemon.Configuration;

/// <summary>
/// A CHAP secret read from its file. It renders as a placeholder everywhere (ToString, records that
/// contain it, log properties) so that no configuration dump or log line can carry it; only the CHAP
/// code asks for the bytes.
/// </summary>
public sealed class ChapSecret
{
    private readonly byte[] _bytes;

    public ChapSecret(ReadOnlySpan<byte> bytes) => _bytes = bytes.ToArray();

    public int Length => _bytes.Length;

    /// <summary>The secret itself, for computing CHAP responses. Never log or serialize it.</summary>
    public ReadOnlySpan<byte> Reveal() => _bytes;

    public override string ToString() => "(secret)";
}
