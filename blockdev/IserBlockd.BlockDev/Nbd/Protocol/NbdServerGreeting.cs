using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>S: "NBDMAGIC", "IHAVEOPT", 16-bit handshake flags — the start of newstyle negotiation.</summary>
public readonly record struct NbdServerGreeting(NbdHandshakeFlags Flags)
{
    public const int Size = 18;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.InitPassword);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], NbdMagic.OptionRequest);
        BinaryPrimitives.WriteUInt16BigEndian(destination[16..], (ushort)Flags);
    }

    public static NbdServerGreeting Read(ReadOnlySpan<byte> source)
    {
        if (BinaryPrimitives.ReadUInt64BigEndian(source) != NbdMagic.InitPassword)
            throw new NbdProtocolException("Not an NBD server: the greeting does not start with NBDMAGIC.");
        if (BinaryPrimitives.ReadUInt64BigEndian(source[8..]) != NbdMagic.OptionRequest)
            throw new NbdProtocolException("The server does not speak newstyle negotiation.");
        return new NbdServerGreeting((NbdHandshakeFlags)BinaryPrimitives.ReadUInt16BigEndian(source[16..]));
    }
}
