using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>S: payload of NBD_REP_META_CONTEXT — the 32-bit context id, then its name.</summary>
public readonly record struct NbdMetaContextReply(uint ContextId, string Name)
{
    /// <summary>The one context this server offers: allocation status (doc/proto.md, "base:allocation").</summary>
    public const string BaseAllocation = "base:allocation";

    public int GetSize() => 4 + NbdString.GetByteCount(Name);

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, ContextId);
        return 4 + NbdString.Write(Name, destination[4..]);
    }

    public static NbdMetaContextReply Read(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 4)
            throw new NbdProtocolException("Meta context reply is shorter than 4 bytes.");
        return new NbdMetaContextReply(BinaryPrimitives.ReadUInt32BigEndian(payload), NbdString.Read(payload[4..]));
    }
}
