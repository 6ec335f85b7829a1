using IserBlockd.BlockDev.Kernel.Nbd;
using IserBlockd.BlockDev.Kernel.Netlink;

namespace IserBlockd.BlockDev.Kernel.Tests;

public class NetlinkParsingTests
{
    [Fact]
    public void GetFamily_request_for_nbd()
    {
        var expected = Hex.Bytes("""
            1c000000        # nlmsg_len 28
            1000            # GENL_ID_CTRL
            0500            # NLM_F_REQUEST | NLM_F_ACK
            2a000000        # seq 42
            00000000        # pid
            03 01 0000      # CTRL_CMD_GETFAMILY, version 1
            0800 0200 6e626400   # CTRL_ATTR_FAMILY_NAME (2) "nbd\0"
            """);
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(GenericNetlinkController.BuildGetFamily("nbd", 42)));
    }

    [Fact]
    public void Family_reply_gives_id_version_and_multicast_group()
    {
        // shaped like ctrl_fill_info(): name, id, version, hdrsize, maxattr, (ops omitted), mcast groups
        var datagram = Hex.Bytes("""
            60000000 1000 0000 2a000000 391a0000   # 96 bytes, reply to seq 42
            01 02 0000                             # CTRL_CMD_NEWFAMILY, version 2
            0800 0200 6e626400                     # CTRL_ATTR_FAMILY_NAME "nbd"
            0600 0100 1b00 0000                    # CTRL_ATTR_FAMILY_ID u16 27 (+2 padding)
            0800 0300 01000000                     # CTRL_ATTR_VERSION 1
            0800 0400 00000000                     # CTRL_ATTR_HDRSIZE 0
            0800 0500 0a000000                     # CTRL_ATTR_MAXATTR 10
            2400 0780                              # CTRL_ATTR_MCAST_GROUPS, nested, 36 bytes
              2000 0180                            #   group #1, nested, 32 bytes
                0800 0200 05000000                 #     CTRL_ATTR_MCAST_GRP_ID 5
                1100 0100 6e62645f6d635f67726f757000 000000  # CTRL_ATTR_MCAST_GRP_NAME "nbd_mc_group\0" (17) + 3
            """);
        var message = Assert.Single(NetlinkMessage.ParseAll(datagram));
        var family = GenericNetlinkController.ParseFamily(message);
        Assert.Equal("nbd", family.Name);
        Assert.Equal(27, family.Id);
        Assert.Equal(1u, family.Version);
        Assert.Equal(5u, family.MulticastGroups["nbd_mc_group"]);
    }

    [Fact]
    public void Error_message_gives_errno_and_the_kernel_text()
    {
        // NLMSG_ERROR, capped (NETLINK_CAP_ACK) with extended ack TLVs: -ENOENT, then the request's header
        var datagram = Hex.Bytes("""
            38000000 0200 0003 2a000000 391a0000   # 56 bytes, NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS
            feffffff                               # error = -2 (ENOENT)
            1c000000 1000 0500 2a000000 00000000   # the request's nlmsghdr only (capped)
            1300 0100 556e6b6e6f776e2066616d696c7900 00  # NLMSGERR_ATTR_MSG "Unknown family\0": len 19, +1 padding
            """);
        var message = Assert.Single(NetlinkMessage.ParseAll(datagram));
        var error = NetlinkError.Parse(message);
        Assert.False(error.IsAck);
        Assert.Equal(2, error.Errno);
        Assert.Equal(42u, error.RequestSequence);
        Assert.Equal("Unknown family", error.KernelMessage);
    }

    [Fact]
    public void Ack_is_an_error_message_with_errno_zero()
    {
        var datagram = Hex.Bytes("""
            24000000 0200 0001 07000000 391a0000   # NLMSG_ERROR, NLM_F_CAPPED
            00000000                               # error 0: ACK
            1c000000 1b00 0500 07000000 00000000   # echoed header
            """);
        var error = NetlinkError.Parse(Assert.Single(NetlinkMessage.ParseAll(datagram)));
        Assert.True(error.IsAck);
        Assert.Null(error.KernelMessage);
    }

    [Fact]
    public void Several_messages_in_one_datagram_are_split_on_aligned_boundaries()
    {
        var datagram = Hex.Bytes("""
            1c000000 1b00 0000 05000000 00000000 01010000 0800 0100 0e000000   # CONNECT reply
            24000000 0200 0001 05000000 00000000 00000000 1c000000 1b00 0500 05000000 00000000  # ACK
            """);
        var messages = NetlinkMessage.ParseAll(datagram);
        Assert.Equal(2, messages.Count);
        Assert.Equal(0x1b, messages[0].Type);
        Assert.Equal(Netlink.Netlink.TypeError, messages[1].Type);
    }

    [Fact]
    public void Malformed_lengths_are_errors_not_skipped()
    {
        // nlmsg_len larger than the datagram
        Assert.Throws<NetlinkException>(() => NetlinkMessage.ParseAll(Hex.Bytes("ff000000 1b00 0000 00000000 00000000")));
        // nlmsg_len under the header size
        Assert.Throws<NetlinkException>(() => NetlinkMessage.ParseAll(Hex.Bytes("08000000 1b00 0000 00000000 00000000")));
        // an attribute running past its container
        var attributes = new NetlinkAttributes(Hex.Bytes("2000 0100 00000000"));
        Assert.Throws<NetlinkException>(() => attributes.ToList());
        // a u32 attribute with 2 bytes
        var shortAttribute = new NetlinkAttributes(Hex.Bytes("0600 0100 0100 0000")).ToList()[0];
        Assert.Throws<NetlinkException>(() => shortAttribute.AsU32());
    }

    [Fact]
    public void Error_whose_echoed_request_length_runs_past_the_payload_has_no_kernel_message()
    {
        // Found by the fuzzer (tests/fuzz/regressions/netlink): NLM_F_ACK_TLVS, not capped, an error, and an echoed
        // nlmsg_len of 0xdadadada; aligning it wrapped the TLV offset negative (ArgumentOutOfRangeException).
        var datagram = Hex.Bytes("""
            24000000 0200 0002 07000000 391a0000   # NLMSG_ERROR, NLM_F_ACK_TLVS
            f4ffffff                               # -12 (ENOMEM)
            dadadada 1b00 0500 07000000 00000000   # echoed header claiming 3.6 GB
            """);
        var error = NetlinkError.Parse(Assert.Single(NetlinkMessage.ParseAll(datagram)));
        Assert.Equal(12, error.Errno);
        Assert.Equal(7u, error.RequestSequence);
        Assert.Null(error.KernelMessage);
    }

    [Fact]
    public void Generic_message_shorter_than_its_genlmsghdr_has_no_attributes()
    {
        // Found by the fuzzer (tests/fuzz/regressions/netlink): a 2-byte payload made GenericAttributes slice past its end.
        var message = Assert.Single(NetlinkMessage.ParseAll(Hex.Bytes("12000000 1b00 0000 01000000 00000000 0101")));
        Assert.Throws<NetlinkException>(() => message.GenericAttributes);
        Assert.False(NbdNetlinkMessages.TryParseLinkDead(message, 0x1b, out _, out var malformed));
        Assert.Equal("generic netlink message shorter than its genlmsghdr", malformed);
    }

    [Fact]
    public void Real_kernel_round_trip_resolves_the_controller_itself()
    {
        // The generic netlink controller always exists ("nlctrl", id 0x10): this checks our socket,
        // bind, send, receive and ACK handling against the running kernel, no module needed.
        using var connection = new GenericNetlinkConnection(TimeSpan.FromSeconds(5));
        var family = connection.ResolveFamily("nlctrl");
        Assert.Equal("nlctrl", family.Name);
        Assert.Equal(0x10, family.Id);
        Assert.Contains("notify", family.MulticastGroups.Keys);
    }

    [Fact]
    public void Real_kernel_says_clearly_when_a_family_is_missing()
    {
        using var connection = new GenericNetlinkConnection(TimeSpan.FromSeconds(5));
        // names are at most GENL_NAMSIZ - 1 = 15 characters, or the kernel answers EINVAL instead
        var e = Assert.Throws<NetlinkFamilyNotFoundException>(() => connection.ResolveFamily("ibd-nofamily"));
        Assert.Equal("ibd-nofamily", e.Family);
        Assert.Contains("ENOENT", e.InnerException!.Message);
    }
}
