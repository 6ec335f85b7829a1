using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>NBD_REP_INFO data of type NBD_INFO_EXPORT: 16-bit type, 64-bit size, 16-bit transmission flags.</summary>
public readonly record struct NbdInfoExport(ulong Size, NbdTransmissionFlags Flags)
{
    public const int Length = 12;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)NbdInfoType.Export);
        BinaryPrimitives.WriteUInt64BigEndian(destination[2..], Size);
        BinaryPrimitives.WriteUInt16BigEndian(destination[10..], (ushort)Flags);
    }

    public static NbdInfoExport Read(ReadOnlySpan<byte> data)
    {
        if (data.Length != Length || BinaryPrimitives.ReadUInt16BigEndian(data) != (ushort)NbdInfoType.Export)
            throw new NbdProtocolException("Malformed NBD_INFO_EXPORT.");
        return new NbdInfoExport(BinaryPrimitives.ReadUInt64BigEndian(data[2..]),
            (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(data[10..]));
    }
}
