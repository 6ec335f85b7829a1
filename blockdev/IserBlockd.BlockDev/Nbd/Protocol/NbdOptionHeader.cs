using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>C: "IHAVEOPT", 32-bit option, 32-bit length of the option data that follows.</summary>
public readonly record struct NbdOptionHeader(NbdOption Option, uint Length)
{
    public const int Size = 16;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.OptionRequest);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], (uint)Option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], Length);
    }

    public static NbdOptionHeader Read(ReadOnlySpan<byte> source)
    {
        var magic = BinaryPrimitives.ReadUInt64BigEndian(source);
        if (magic != NbdMagic.OptionRequest)
            throw new NbdProtocolException($"Option request with bad magic 0x{magic:x16}.");
        return new NbdOptionHeader(
            (NbdOption)BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[12..]));
    }
}
