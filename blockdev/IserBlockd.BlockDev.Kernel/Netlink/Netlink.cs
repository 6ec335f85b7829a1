namespace IserBlockd.BlockDev.Kernel.Netlink;

/// <summary>Constants of linux/netlink.h and linux/genetlink.h, and the alignment rules.
/// Netlink is in host byte order; we build it explicitly little-endian and refuse big-endian hosts.</summary>
internal static class Netlink
{
    public const int MessageHeaderLength = 16;   // struct nlmsghdr: len u32, type u16, flags u16, seq u32, pid u32
    public const int GenericHeaderLength = 4;    // struct genlmsghdr: cmd u8, version u8, reserved u16
    public const int AttributeHeaderLength = 4;  // struct nlattr: len u16, type u16

    // nlmsghdr.nlmsg_type values below NLMSG_MIN_TYPE (0x10) are control messages
    public const ushort TypeNoop = 1;
    public const ushort TypeError = 2;
    public const ushort TypeDone = 3;
    public const ushort TypeGenericController = 0x10;  // GENL_ID_CTRL

    // nlmsghdr.nlmsg_flags
    public const ushort FlagRequest = 0x1;
    public const ushort FlagMulti = 0x2;
    public const ushort FlagAck = 0x4;
    public const ushort FlagDump = 0x300;            // NLM_F_ROOT | NLM_F_MATCH
    public const ushort FlagCapped = 0x100;          // in an NLMSG_ERROR: the request was not echoed (NETLINK_CAP_ACK)
    public const ushort FlagAckTlvs = 0x200;         // in an NLMSG_ERROR: extended-ack attributes follow

    // nlattr.nla_type high bits
    public const ushort AttributeNested = 0x8000;    // NLA_F_NESTED
    public const ushort AttributeNetByteOrder = 0x4000;
    public const ushort AttributeTypeMask = 0x3fff;

    // extended ack attributes (enum nlmsgerr_attrs)
    public const ushort ExtAckMessage = 1;

    /// <summary>NLMSG_ALIGN and NLA_ALIGN: both round up to 4 bytes.</summary>
    public static int Align(int length) => (length + 3) & ~3;

    public static void EnsureLittleEndianHost()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Netlink messages are built little-endian; this host is big-endian.");
    }
}
