using System.Text;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>NBD strings: UTF-8, no NUL, at most 4096 bytes (doc/proto.md, "Conventions").</summary>
public static class NbdString
{
    public const int MaxBytes = 4096;

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static int GetByteCount(string value) => Strict.GetByteCount(value);

    public static int Write(string value, Span<byte> destination) => Strict.GetBytes(value, destination);

    /// <summary>Decodes a string received from a peer; invalid UTF-8, NUL or excess length is a protocol error.</summary>
    public static string Read(ReadOnlySpan<byte> source)
    {
        if (source.Length > MaxBytes)
            throw new NbdProtocolException($"String of {source.Length} bytes is longer than the {MaxBytes} bytes NBD allows.");
        if (source.Contains((byte)0))
            throw new NbdProtocolException("String contains a NUL character.");
        try
        {
            return Strict.GetString(source);
        }
        catch (DecoderFallbackException)
        {
            throw new NbdProtocolException("String is not valid UTF-8.");
        }
    }

    /// <summary>Checks a name we are about to publish (export names, descriptions).</summary>
    public static void Validate(string value, string what)
    {
        if (value.Contains('\0'))
            throw new ArgumentException($"The {what} must not contain NUL.", what);
        int bytes;
        try
        {
            bytes = GetByteCount(value);
        }
        catch (EncoderFallbackException)
        {
            throw new ArgumentException($"The {what} is not valid Unicode.", what);
        }
        if (bytes > MaxBytes)
            throw new ArgumentException($"The {what} is longer than {MaxBytes} bytes of UTF-8.", what);
    }
}
