using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>
/// S: NBD_REPLY_TYPE_ERROR chunk — structured header (length = 6 + message length), 32-bit error,
/// 16-bit message length, then a human-readable UTF-8 message.
/// </summary>
public readonly ref struct NbdErrorChunk(ulong Handle, uint Error, ReadOnlySpan<byte> Message, bool Done = true)
{
    public readonly ulong Handle = Handle;
    public readonly uint Error = Error;
    public readonly ReadOnlySpan<byte> Message = Message;
    public readonly bool Done = Done;

    public int Size => NbdStructuredReplyHeader.Size + 6 + Message.Length;

    public int Write(Span<byte> destination)
    {
        new NbdStructuredReplyHeader(Done ? NbdReplyFlags.Done : NbdReplyFlags.None, NbdReplyChunkType.Error,
            Handle, (uint)(6 + Message.Length)).Write(destination);
        var payload = destination[NbdStructuredReplyHeader.Size..];
        BinaryPrimitives.WriteUInt32BigEndian(payload, Error);
        BinaryPrimitives.WriteUInt16BigEndian(payload[4..], (ushort)Message.Length);
        Message.CopyTo(payload[6..]);
        return Size;
    }

    /// <summary>Reads the error and message from a chunk payload (after the structured header).</summary>
    public static (uint Error, string Message) ReadPayload(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 6)
            throw new NbdProtocolException("Error chunk payload is shorter than 6 bytes.");
        var messageLength = BinaryPrimitives.ReadUInt16BigEndian(payload[4..]);
        if (messageLength > payload.Length - 6)
            throw new NbdProtocolException("Error chunk message length exceeds the chunk.");
        return (BinaryPrimitives.ReadUInt32BigEndian(payload), NbdString.Read(payload.Slice(6, messageLength)));
    }
}
