namespace IserBlockd.Iscsi.Pdu;

/// <summary>Sizes of the parts of a PDU on the wire: padding to 4 bytes and optional CRC32C digests.</summary>
public static class PduLayout
{
    public const int DigestLength = 4;

    /// <summary>Bytes of zero padding after a data segment of <paramref name="length"/> bytes.</summary>
    public static int Padding(int length) => (4 - (length & 3)) & 3;

    /// <summary>Bytes that follow the header (BHS + AHS + header digest) on the wire.</summary>
    public static int DataSegmentWireLength(int dataSegmentLength, bool dataDigest)
        => dataSegmentLength == 0 ? 0 : dataSegmentLength + Padding(dataSegmentLength) + (dataDigest ? DigestLength : 0);

    /// <summary>Length of BHS + AHS + header digest for a header whose TotalAHSLength is <paramref name="totalAhsLength"/>.</summary>
    public static int HeaderWireLength(int totalAhsLength, bool headerDigest)
        => BasicHeaderSegment.Length + totalAhsLength + (headerDigest ? DigestLength : 0);
}
