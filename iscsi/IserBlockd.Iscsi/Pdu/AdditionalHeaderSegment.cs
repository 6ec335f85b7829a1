using System.Buffers.Binary;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>AHS types an initiator uses (RFC 7143 §11.2.2).</summary>
public enum AhsType : byte
{
    ExtendedCdb = 1,
    BidirectionalReadLength = 2,
}

/// <summary>
/// Additional Header Segments: 2-byte AHSLength (bytes after the type byte, without padding), 1-byte type,
/// the type-specific bytes (first one reserved), padded to 4 bytes.
/// </summary>
public static class AdditionalHeaderSegment
{
    /// <summary>Wire size of an Extended CDB AHS for a CDB of <paramref name="cdbLength"/> bytes (0 when it fits in the BHS).</summary>
    public static int ExtendedCdbSize(int cdbLength) => cdbLength <= 16 ? 0 : Align4(3 + 1 + (cdbLength - 16));

    public const int BidirectionalReadLengthSize = 8;

    public static int WriteExtendedCdb(Span<byte> destination, ReadOnlySpan<byte> cdb)
    {
        var size = ExtendedCdbSize(cdb.Length);
        destination[..size].Clear();
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)(cdb.Length - 15));
        destination[2] = (byte)AhsType.ExtendedCdb;
        cdb[16..].CopyTo(destination[4..]);
        return size;
    }

    public static int WriteBidirectionalReadLength(Span<byte> destination, uint expectedReadLength)
    {
        destination[..BidirectionalReadLengthSize].Clear();
        BinaryPrimitives.WriteUInt16BigEndian(destination, 5);
        destination[2] = (byte)AhsType.BidirectionalReadLength;
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], expectedReadLength);
        return BidirectionalReadLengthSize;
    }

    /// <summary>Walks the AHS area; throws <see cref="IscsiProtocolException"/> if an entry overruns it.</summary>
    public static void Parse(ReadOnlySpan<byte> ahs, out ReadOnlySpan<byte> extendedCdbTail, out uint? bidirectionalReadLength)
    {
        extendedCdbTail = default;
        bidirectionalReadLength = null;
        while (ahs.Length > 0)
        {
            if (ahs.Length < 4) throw new IscsiProtocolException($"AHS area ends inside an AHS header ({ahs.Length} bytes left)");
            int length = BinaryPrimitives.ReadUInt16BigEndian(ahs);
            var type = ahs[2];
            var total = Align4(3 + length);
            if (length == 0 || total > ahs.Length)
                throw new IscsiProtocolException($"AHS of type {type} with length {length} overruns the {ahs.Length} bytes left");
            var specific = ahs.Slice(3, length);
            switch ((AhsType)type)
            {
                case AhsType.ExtendedCdb:
                    extendedCdbTail = specific[1..];
                    break;
                case AhsType.BidirectionalReadLength:
                    if (length != 5) throw new IscsiProtocolException($"bidirectional read length AHS has length {length}, expected 5");
                    bidirectionalReadLength = BinaryPrimitives.ReadUInt32BigEndian(specific[1..]);
                    break;
            }
            ahs = ahs[total..];
        }
    }

    private static int Align4(int n) => (n + 3) & ~3;
}
