using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>S: structured reply chunk header — magic, 16-bit flags, 16-bit type, 64-bit handle,
/// 32-bit payload length.</summary>
public readonly record struct NbdStructuredReplyHeader(NbdReplyFlags Flags, NbdReplyChunkType Type, ulong Handle, uint Length)
{
    public const int Size = 20;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.StructuredReply);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Type);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Handle);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], Length);
    }

    public static NbdStructuredReplyHeader Read(ReadOnlySpan<byte> source)
    {
        var magic = BinaryPrimitives.ReadUInt32BigEndian(source);
        if (magic != NbdMagic.StructuredReply)
            throw new NbdProtocolException($"Structured reply with bad magic 0x{magic:x8}.");
        return new NbdStructuredReplyHeader(
            (NbdReplyFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            (NbdReplyChunkType)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[16..]));
    }
}
