using System.Buffers.Binary;
using System.Text;

namespace IserBlockd.BlockDev.Kernel.Netlink;

/// <summary>
/// Builds one generic netlink request: nlmsghdr, genlmsghdr, then attributes, each padded to 4 bytes
/// (NLA_ALIGN), nested attributes with their length patched when closed. Host byte order (little-endian).
/// </summary>
internal sealed class NetlinkMessageBuilder
{
    private byte[] _buffer = new byte[256];
    private int _length;

    public NetlinkMessageBuilder(ushort type, ushort flags, uint sequence, byte command, byte version)
    {
        Netlink.EnsureLittleEndianHost();
        var header = Reserve(Netlink.MessageHeaderLength + Netlink.GenericHeaderLength);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], sequence);
        // nlmsg_pid 0: the kernel is the destination; genlmsghdr.reserved stays 0
        header[16] = command;
        header[17] = version;
    }

    public NetlinkMessageBuilder PutU32(ushort type, uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(PutAttribute(type, 4), value);
        return this;
    }

    public NetlinkMessageBuilder PutU64(ushort type, ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(PutAttribute(type, 8), value);
        return this;
    }

    /// <summary>A NUL-terminated string attribute (NLA_NUL_STRING / NLA_STRING as the kernel's policies expect).</summary>
    public NetlinkMessageBuilder PutString(ushort type, string value)
    {
        var bytes = Encoding.UTF8.GetByteCount(value);
        var payload = PutAttribute(type, bytes + 1);
        Encoding.UTF8.GetBytes(value, payload);
        payload[bytes] = 0;
        return this;
    }

    /// <summary>Opens a nested attribute (NLA_F_NESTED set); returns its offset for <see cref="EndNested"/>.</summary>
    public int BeginNested(ushort type)
    {
        var start = _length;
        var header = Reserve(Netlink.AttributeHeaderLength);
        BinaryPrimitives.WriteUInt16LittleEndian(header[2..], (ushort)(type | Netlink.AttributeNested));
        return start;
    }

    public NetlinkMessageBuilder EndNested(int start)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(start), checked((ushort)(_length - start)));
        return this;
    }

    /// <summary>The finished message with nlmsg_len set.</summary>
    public byte[] ToArray()
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer, (uint)_length);
        return _buffer.AsSpan(0, _length).ToArray();
    }

    private Span<byte> PutAttribute(ushort type, int payloadLength)
    {
        var total = Netlink.AttributeHeaderLength + payloadLength;
        var span = Reserve(Netlink.Align(total));
        // nla_len counts header + payload, not the padding after it
        BinaryPrimitives.WriteUInt16LittleEndian(span, checked((ushort)total));
        BinaryPrimitives.WriteUInt16LittleEndian(span[2..], type);
        return span.Slice(Netlink.AttributeHeaderLength, payloadLength);
    }

    private Span<byte> Reserve(int count)
    {
        if (_length + count > _buffer.Length)
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + count));
        var span = _buffer.AsSpan(_length, count);
        span.Clear();   // padding and reserved fields are zero
        _length += count;
        return span;
    }
}
