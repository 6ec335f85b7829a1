using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>NBD_REP_INFO data of type NBD_INFO_BLOCK_SIZE: 16-bit type and the minimum, preferred and
/// maximum block sizes (32 bits each).</summary>
public readonly record struct NbdInfoBlockSize(uint Minimum, uint Preferred, uint Maximum)
{
    public const int Length = 14;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)NbdInfoType.BlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(destination[2..], Minimum);
        BinaryPrimitives.WriteUInt32BigEndian(destination[6..], Preferred);
        BinaryPrimitives.WriteUInt32BigEndian(destination[10..], Maximum);
    }

    public static NbdInfoBlockSize Read(ReadOnlySpan<byte> data)
    {
        if (data.Length != Length || BinaryPrimitives.ReadUInt16BigEndian(data) != (ushort)NbdInfoType.BlockSize)
            throw new NbdProtocolException("Malformed NBD_INFO_BLOCK_SIZE.");
        return new NbdInfoBlockSize(BinaryPrimitives.ReadUInt32BigEndian(data[2..]),
            BinaryPrimitives.ReadUInt32BigEndian(data[6..]), BinaryPrimitives.ReadUInt32BigEndian(data[10..]));
    }
}
