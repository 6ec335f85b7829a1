namespace IserBlockd.Iscsi.Pdu;

/// <summary>Sizes of the parts of a PDU on the wire: padding to 4 bytes and optional CRC32C digests.</summary>
public static class PduLayout
{
    public const int DigestLength = 4;

    /// <summary>Bytes of zero padding after a data segment of <paramref name="length"/> bytes.</summary>
    public static int Padding(int length) => (4 - (length & 3)) & 3;
}
