using System.Buffers.Binary;
using System.Text;

namespace IserBlockd.RdmaProbe;

/// <summary>
/// rping's wire format (librdmacm/examples/rping.c), so the probe interoperates with the real rping: the 16-byte
/// <c>struct rping_rdma_info</c> {be64 buf; be32 rkey; be32 size} and the ASCII ping pattern.
/// </summary>
internal static class RpingMessages
{
    public const int InfoSize = 16;

    public static void WriteInfo(Span<byte> destination, ulong address, uint rkey, uint size)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, address);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], rkey);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], size);
    }

    public static (ulong Address, uint RemoteKey, uint Size) ReadInfo(ReadOnlySpan<byte> source) =>
        (BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
         BinaryPrimitives.ReadUInt32BigEndian(source[12..]));

    /// <summary>
    /// rping's ping data: "rdma-ping-N: " then letters cycling 'A'..'z' from a start letter that advances per ping,
    /// NUL-terminated at <c>size - 1</c>.
    /// </summary>
    public static void FillPattern(Span<byte> buffer, int ping)
    {
        var prefix = Encoding.ASCII.GetBytes($"rdma-ping-{ping}: ");
        var cc = Math.Min(prefix.Length, buffer.Length - 1);
        prefix.AsSpan(0, cc).CopyTo(buffer);
        var c = (byte)(65 + ping % 58);
        for (var i = cc; i < buffer.Length; i++)
        {
            buffer[i] = c;
            c++;
            if (c > 122) c = 65;
        }
        buffer[^1] = 0;
    }

    /// <summary>Checks a buffer against <see cref="FillPattern"/>; returns the first differing offset or -1.</summary>
    public static int FindPatternMismatch(ReadOnlySpan<byte> buffer, int ping)
    {
        var expected = new byte[buffer.Length];
        FillPattern(expected, ping);
        var common = buffer.CommonPrefixLength(expected);
        return common == buffer.Length ? -1 : common;
    }
}
