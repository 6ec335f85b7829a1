using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>NBD_REP_INFO data of type NBD_INFO_NAME: 16-bit type, then the canonical export name.</summary>
public sealed record NbdInfoName(string Name)
{
    public int GetLength() => 2 + NbdString.GetByteCount(Name);

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)NbdInfoType.Name);
        return 2 + NbdString.Write(Name, destination[2..]);
    }

    public static NbdInfoName Read(ReadOnlySpan<byte> data)
    {
        if (data.Length < 2 || BinaryPrimitives.ReadUInt16BigEndian(data) != (ushort)NbdInfoType.Name)
            throw new NbdProtocolException("Malformed NBD_INFO_NAME.");
        return new NbdInfoName(NbdString.Read(data[2..]));
    }
}
