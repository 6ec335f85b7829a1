using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Kernel.Netlink;

/// <summary>The payload of an NLMSG_ERROR message (struct nlmsgerr): a negative errno (0 = ACK), the
/// header of the request it answers, and with NLM_F_ACK_TLVS the extended-ack attributes.</summary>
internal readonly record struct NetlinkError(int Errno, uint RequestSequence, string? KernelMessage)
{
    public bool IsAck => Errno == 0;

    public static NetlinkError Parse(NetlinkMessage message)
    {
        var payload = message.Payload;
        if (payload.Length < 4 + Netlink.MessageHeaderLength)
            throw new NetlinkException($"NLMSG_ERROR of {payload.Length} bytes is too short for struct nlmsgerr");
        var error = BinaryPrimitives.ReadInt32LittleEndian(payload.Span);
        var requestLength = BinaryPrimitives.ReadUInt32LittleEndian(payload.Span[4..]);
        var requestSequence = BinaryPrimitives.ReadUInt32LittleEndian(payload.Span[12..]);
        string? text = null;
        if ((message.Flags & Netlink.FlagAckTlvs) != 0)
        {
            // the echoed request is only its header when capped (NETLINK_CAP_ACK) or on success
            var echoed = (message.Flags & Netlink.FlagCapped) != 0 || error == 0
                ? Netlink.MessageHeaderLength
                : requestLength;
            // A length past the payload would wrap the aligned offset: the TLVs are then unreadable, not an error.
            if (echoed > (uint)payload.Length)
                return new NetlinkError(-error, requestSequence, null);
            var tlvStart = 4 + Netlink.Align((int)echoed);
            if (tlvStart <= payload.Length)
                text = new NetlinkAttributes(payload[tlvStart..]).Find(Netlink.ExtAckMessage)?.AsString();
        }
        return new NetlinkError(-error, requestSequence, text);
    }
}
