using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>
/// S: NBD_REPLY_TYPE_OFFSET_DATA chunk — structured header (length = 8 + data length), 64-bit offset,
/// then the data. Only the 28-byte prefix is written here so the data can go out from its own buffer.
/// </summary>
public readonly record struct NbdOffsetDataChunk(ulong Handle, ulong Offset, uint DataLength, bool Done)
{
    public const int PrefixSize = NbdStructuredReplyHeader.Size + 8;

    public void WritePrefix(Span<byte> destination)
    {
        new NbdStructuredReplyHeader(Done ? NbdReplyFlags.Done : NbdReplyFlags.None, NbdReplyChunkType.OffsetData,
            Handle, DataLength + 8).Write(destination);
        BinaryPrimitives.WriteUInt64BigEndian(destination[NbdStructuredReplyHeader.Size..], Offset);
    }
}
