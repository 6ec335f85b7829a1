using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>
/// C: a transmission request — magic, 16-bit command flags, 16-bit type, 64-bit handle (cookie),
/// 64-bit offset, 32-bit length; a WRITE is followed by <see cref="Length"/> bytes of payload.
/// </summary>
public readonly record struct NbdRequest(NbdCommandFlags Flags, NbdCommand Command, ulong Handle, ulong Offset, uint Length)
{
    public const int Size = 28;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.Request);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Command);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Handle);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], Offset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], Length);
    }

    /// <summary>False when the first four bytes are not NBD_REQUEST_MAGIC: the stream is out of sync.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out NbdRequest request)
    {
        if (BinaryPrimitives.ReadUInt32BigEndian(source) != NbdMagic.Request)
        {
            request = default;
            return false;
        }
        request = new NbdRequest(
            (NbdCommandFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            (NbdCommand)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[16..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[24..]));
        return true;
    }
}
