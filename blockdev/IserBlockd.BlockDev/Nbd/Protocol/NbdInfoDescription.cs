using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>NBD_REP_INFO data of type NBD_INFO_DESCRIPTION: 16-bit type, then a human-readable description.</summary>
public sealed record NbdInfoDescription(string Description)
{
    public int GetLength() => 2 + NbdString.GetByteCount(Description);

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)NbdInfoType.Description);
        return 2 + NbdString.Write(Description, destination[2..]);
    }

    public static NbdInfoDescription Read(ReadOnlySpan<byte> data)
    {
        if (data.Length < 2 || BinaryPrimitives.ReadUInt16BigEndian(data) != (ushort)NbdInfoType.Description)
            throw new NbdProtocolException("Malformed NBD_INFO_DESCRIPTION.");
        return new NbdInfoDescription(NbdString.Read(data[2..]));
    }
}
