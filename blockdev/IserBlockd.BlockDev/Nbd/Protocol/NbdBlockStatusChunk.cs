using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>
/// S: NBD_REPLY_TYPE_BLOCK_STATUS chunk — structured header (length = 4 + 8 × descriptors), the 32-bit
/// meta context id, then descriptors of a 32-bit length and 32-bit status flags (for
/// <c>base:allocation</c>: NBD_STATE_HOLE 1, NBD_STATE_ZERO 2), consecutive from the request's offset.
/// </summary>
public static class NbdBlockStatusChunk
{
    public const int PrefixSize = NbdStructuredReplyHeader.Size + 4;
    public const int DescriptorSize = 8;

    public static int GetSize(int descriptors) => PrefixSize + DescriptorSize * descriptors;

    public static int Write(Span<byte> destination, ulong handle, uint contextId, ReadOnlySpan<BlockExtent> extents)
    {
        new NbdStructuredReplyHeader(NbdReplyFlags.Done, NbdReplyChunkType.BlockStatus, handle,
            (uint)(4 + DescriptorSize * extents.Length)).Write(destination);
        BinaryPrimitives.WriteUInt32BigEndian(destination[NbdStructuredReplyHeader.Size..], contextId);
        var position = PrefixSize;
        foreach (var extent in extents)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination[position..], (uint)extent.Length);
            BinaryPrimitives.WriteUInt32BigEndian(destination[(position + 4)..], (uint)extent.State);
            position += DescriptorSize;
        }
        return position;
    }

    /// <summary>Reads a chunk payload (after the structured header): the context id and the descriptors.</summary>
    public static (uint ContextId, BlockExtent[] Extents) ReadPayload(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 4 || (payload.Length - 4) % DescriptorSize != 0)
            throw new NbdProtocolException($"Block status payload of {payload.Length} bytes is not 4 + 8n.");
        var extents = new BlockExtent[(payload.Length - 4) / DescriptorSize];
        for (var i = 0; i < extents.Length; i++)
        {
            var d = payload[(4 + i * DescriptorSize)..];
            extents[i] = new BlockExtent(BinaryPrimitives.ReadUInt32BigEndian(d), (BlockAllocation)BinaryPrimitives.ReadUInt32BigEndian(d[4..]));
        }
        return (BinaryPrimitives.ReadUInt32BigEndian(payload), extents);
    }
}
