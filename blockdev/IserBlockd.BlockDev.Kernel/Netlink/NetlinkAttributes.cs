using System.Buffers.Binary;
using System.Text;

namespace IserBlockd.BlockDev.Kernel.Netlink;

/// <summary>A run of netlink attributes (the body of a message or of a nested attribute).</summary>
internal readonly struct NetlinkAttributes(ReadOnlyMemory<byte> data)
{
    /// <summary>Every attribute in order; a truncated or overlong attribute is a protocol error.</summary>
    public List<NetlinkAttribute> ToList()
    {
        var list = new List<NetlinkAttribute>();
        var offset = 0;
        while (data.Length - offset >= Netlink.AttributeHeaderLength)
        {
            var span = data.Span[offset..];
            var length = BinaryPrimitives.ReadUInt16LittleEndian(span);
            var type = BinaryPrimitives.ReadUInt16LittleEndian(span[2..]);
            if (length < Netlink.AttributeHeaderLength || length > span.Length)
                throw new NetlinkException($"malformed netlink attribute {type & Netlink.AttributeTypeMask}: length {length} with {span.Length} bytes left");
            list.Add(new NetlinkAttribute((ushort)(type & Netlink.AttributeTypeMask),
                data.Slice(offset + Netlink.AttributeHeaderLength, length - Netlink.AttributeHeaderLength)));
            offset += Netlink.Align(length);
        }
        return list;
    }

    /// <summary>The first attribute of <paramref name="type"/>, if any.</summary>
    public NetlinkAttribute? Find(ushort type)
    {
        foreach (var a in ToList())
            if (a.Type == type) return a;
        return null;
    }
}

/// <summary>One attribute: its type (flags stripped) and payload (padding excluded).</summary>
internal readonly record struct NetlinkAttribute(ushort Type, ReadOnlyMemory<byte> Payload)
{
    public byte AsU8() => Payload.Length >= 1 ? Payload.Span[0] : throw Short(1);
    public ushort AsU16() => Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16LittleEndian(Payload.Span) : throw Short(2);
    public uint AsU32() => Payload.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(Payload.Span) : throw Short(4);
    public ulong AsU64() => Payload.Length >= 8 ? BinaryPrimitives.ReadUInt64LittleEndian(Payload.Span) : throw Short(8);

    public string AsString()
    {
        var span = Payload.Span;
        var nul = span.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? span[..nul] : span);
    }

    public NetlinkAttributes AsNested() => new(Payload);

    private NetlinkException Short(int need) =>
        new($"netlink attribute {Type} has {Payload.Length} bytes, expected at least {need}");
}
