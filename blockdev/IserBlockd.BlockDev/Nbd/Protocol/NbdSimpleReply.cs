using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>S: simple reply — magic, 32-bit error (0 = success), 64-bit handle; a successful READ's
/// data follows.</summary>
public readonly record struct NbdSimpleReply(uint Error, ulong Handle)
{
    public const int Size = 16;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.SimpleReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], Error);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Handle);
    }

    public static NbdSimpleReply Read(ReadOnlySpan<byte> source)
    {
        var magic = BinaryPrimitives.ReadUInt32BigEndian(source);
        if (magic != NbdMagic.SimpleReply)
            throw new NbdProtocolException($"Simple reply with bad magic 0x{magic:x8}.");
        return new NbdSimpleReply(BinaryPrimitives.ReadUInt32BigEndian(source[4..]), BinaryPrimitives.ReadUInt64BigEndian(source[8..]));
    }
}
