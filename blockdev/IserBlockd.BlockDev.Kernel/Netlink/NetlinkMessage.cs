using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Kernel.Netlink;

/// <summary>One message of a received netlink datagram: header fields and the payload after nlmsghdr.</summary>
internal readonly record struct NetlinkMessage(ushort Type, ushort Flags, uint Sequence, uint PortId, ReadOnlyMemory<byte> Payload)
{
    /// <summary>Splits a datagram into its messages (NLMSG_OK / NLMSG_NEXT). A length that runs past
    /// the datagram or under the header size is a protocol error, not something to skip.</summary>
    public static List<NetlinkMessage> ParseAll(ReadOnlyMemory<byte> datagram)
    {
        Netlink.EnsureLittleEndianHost();
        var messages = new List<NetlinkMessage>();
        var offset = 0;
        while (datagram.Length - offset >= Netlink.MessageHeaderLength)
        {
            var span = datagram.Span[offset..];
            var length = BinaryPrimitives.ReadUInt32LittleEndian(span);
            if (length < Netlink.MessageHeaderLength || length > span.Length)
                throw new NetlinkException($"malformed netlink message: length {length} with {span.Length} bytes left");
            messages.Add(new NetlinkMessage(
                Type: BinaryPrimitives.ReadUInt16LittleEndian(span[4..]),
                Flags: BinaryPrimitives.ReadUInt16LittleEndian(span[6..]),
                Sequence: BinaryPrimitives.ReadUInt32LittleEndian(span[8..]),
                PortId: BinaryPrimitives.ReadUInt32LittleEndian(span[12..]),
                Payload: datagram.Slice(offset + Netlink.MessageHeaderLength, (int)length - Netlink.MessageHeaderLength)));
            offset += Netlink.Align((int)length);
        }
        return messages;
    }

    /// <summary>For a generic netlink message: the command of its genlmsghdr.</summary>
    public byte GenericCommand => Payload.Length >= Netlink.GenericHeaderLength
        ? Payload.Span[0]
        : throw new NetlinkException("generic netlink message shorter than its genlmsghdr");

    /// <summary>For a generic netlink message: the attributes after genlmsghdr.</summary>
    public NetlinkAttributes GenericAttributes => Payload.Length >= Netlink.GenericHeaderLength
        ? new(Payload[Netlink.GenericHeaderLength..])
        : throw new NetlinkException("generic netlink message shorter than its genlmsghdr");
}
