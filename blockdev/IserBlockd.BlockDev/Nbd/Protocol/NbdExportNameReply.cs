using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>
/// S: answer to NBD_OPT_EXPORT_NAME — 64-bit size, 16-bit transmission flags, then 124 zero bytes
/// unless the client negotiated NBD_FLAG_C_NO_ZEROES.
/// </summary>
public readonly record struct NbdExportNameReply(ulong Size, NbdTransmissionFlags Flags)
{
    public const int ShortSize = 10;
    public const int ZeroPadding = 124;
    public const int PaddedSize = ShortSize + ZeroPadding;

    public static int GetSize(bool noZeroes) => noZeroes ? ShortSize : PaddedSize;

    public int Write(Span<byte> destination, bool noZeroes)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, Size);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], (ushort)Flags);
        if (noZeroes) return ShortSize;
        destination.Slice(ShortSize, ZeroPadding).Clear();
        return PaddedSize;
    }

    public static NbdExportNameReply Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadUInt64BigEndian(source), (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(source[8..]));
}
