using System.Buffers.Binary;
using System.IO.Hashing;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>
/// The iSCSI header and data digest (CRC32C, RFC 7143 §13.1), from System.IO.Hashing (hardware accelerated).
/// The 32-bit result goes on the wire least significant byte first, as in RFC 3720 Appendix B.4.
/// </summary>
public static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data);

    /// <summary>An incremental CRC32C for digests over several pieces (data, then padding).</summary>
    public static Crc32 CreateIncremental() => new(Crc32ParameterSet.Crc32C);

    public static void WriteDigest(Span<byte> destination, uint crc) => BinaryPrimitives.WriteUInt32LittleEndian(destination, crc);

    public static uint ReadDigest(ReadOnlySpan<byte> source) => BinaryPrimitives.ReadUInt32LittleEndian(source);
}
