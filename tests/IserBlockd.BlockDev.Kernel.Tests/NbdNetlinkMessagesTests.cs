using IserBlockd.BlockDev.Kernel.Nbd;
using IserBlockd.BlockDev.Kernel.Netlink;

namespace IserBlockd.BlockDev.Kernel.Tests;

/// <summary>
/// The requests of the "nbd" family, byte for byte. Expected vectors are assembled by hand from
/// linux/netlink.h (nlmsghdr: len u32, type u16, flags u16, seq u32, pid u32), linux/genetlink.h
/// (genlmsghdr: cmd u8, version u8, reserved u16), nlattr (len u16 incl. header, type u16, payload
/// padded to 4) and linux/nbd-netlink.h, all little-endian (x86-64/arm64 host order).
/// </summary>
public class NbdNetlinkMessagesTests
{
    private const ushort FamilyId = 0x1b;   // whatever the controller assigned; 27 here

    [Fact]
    public void Connect_with_index_geometry_timeouts_and_two_sockets()
    {
        var configuration = new NbdDeviceConfiguration
        {
            Index = 3,
            SizeBytes = 64UL << 20,
            BlockSizeBytes = 4096,
            TimeoutSeconds = 30,
            ServerFlags = 0x10d,   // HAS_FLAGS | SEND_FLUSH | SEND_FUA | CAN_MULTI_CONN
            ClientFlags = NbdDeviceClientFlags.DestroyOnDisconnect,
            DeadConnectionTimeoutSeconds = 60,
        };
        var bytes = NbdNetlinkMessages.BuildConnect(FamilyId, sequence: 0x01020304, configuration, [7, 9]);

        var expected = Hex.Bytes("""
            80000000                 # nlmsg_len = 128
            1b00                     # nlmsg_type = family id 27
            0500                     # NLM_F_REQUEST | NLM_F_ACK
            04030201                 # nlmsg_seq
            00000000                 # nlmsg_pid: 0, to the kernel
            01 01 0000               # genl: NBD_CMD_CONNECT, version 1, reserved
            0800 0100 03000000       # NBD_ATTR_INDEX (1) u32 3
            0c00 0200 0000000400000000   # NBD_ATTR_SIZE_BYTES (2) u64 0x4000000
            0c00 0300 0010000000000000   # NBD_ATTR_BLOCK_SIZE_BYTES (3) u64 4096
            0c00 0400 1e00000000000000   # NBD_ATTR_TIMEOUT (4) u64 30
            0c00 0500 0d01000000000000   # NBD_ATTR_SERVER_FLAGS (5) u64 0x10d
            0c00 0600 0100000000000000   # NBD_ATTR_CLIENT_FLAGS (6) u64 NBD_CFLAG_DESTROY_ON_DISCONNECT
            1c00 0780                # NBD_ATTR_SOCKETS (7) | NLA_F_NESTED, 28 bytes
              0c00 0180              #   NBD_SOCK_ITEM (1) | NLA_F_NESTED, 12 bytes
                0800 0100 07000000   #     NBD_SOCK_FD (1) u32 7
              0c00 0180              #   NBD_SOCK_ITEM
                0800 0100 09000000   #     NBD_SOCK_FD u32 9
            0c00 0800 3c00000000000000   # NBD_ATTR_DEAD_CONN_TIMEOUT (8) u64 60
            """);
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(bytes));
    }

    [Fact]
    public void Connect_without_index_asks_for_the_first_free_device_and_pads_the_backend_string()
    {
        var configuration = new NbdDeviceConfiguration { SizeBytes = 1 << 20, BlockSizeBytes = 512, BackendIdentifier = "lun-7" };
        var bytes = NbdNetlinkMessages.BuildConnect(FamilyId, sequence: 1, configuration, [5]);

        var expected = Hex.Bytes("""
            48000000 1b00 0500 01000000 00000000   # nlmsghdr, 72 bytes
            01 01 0000                             # NBD_CMD_CONNECT v1
                                                   # (no NBD_ATTR_INDEX: the kernel picks)
            0c00 0200 0000100000000000             # NBD_ATTR_SIZE_BYTES 1 MiB
            0c00 0300 0002000000000000             # NBD_ATTR_BLOCK_SIZE_BYTES 512
            1000 0780                              # NBD_ATTR_SOCKETS, nested, 16 bytes
              0c00 0180 0800 0100 05000000         #   NBD_SOCK_ITEM { NBD_SOCK_FD 5 }
            0a00 0a00 6c756e2d3700 0000            # NBD_ATTR_BACKEND_IDENTIFIER (10) "lun-7\0": len 10, 2 bytes padding
            """);
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(bytes));
    }

    [Fact]
    public void Reconfigure_carries_index_timeouts_and_the_new_socket()
    {
        var configuration = new NbdDeviceConfiguration { Index = 0, TimeoutSeconds = 5, DeadConnectionTimeoutSeconds = 120 };
        var bytes = NbdNetlinkMessages.BuildReconfigure(FamilyId, sequence: 2, configuration, [11]);

        var expected = Hex.Bytes("""
            44000000 1b00 0500 02000000 00000000   # nlmsghdr, 68 bytes
            03 01 0000                             # NBD_CMD_RECONFIGURE v1
            0800 0100 00000000                     # NBD_ATTR_INDEX 0
            0c00 0400 0500000000000000             # NBD_ATTR_TIMEOUT 5
            1000 0780 0c00 0180 0800 0100 0b000000 # NBD_ATTR_SOCKETS { NBD_SOCK_ITEM { NBD_SOCK_FD 11 } }
            0c00 0800 7800000000000000             # NBD_ATTR_DEAD_CONN_TIMEOUT 120
            """);
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(bytes));
    }

    [Fact]
    public void Disconnect_and_status_requests()
    {
        Assert.Equal(Convert.ToHexString(Hex.Bytes("""
            1c000000 1b00 0500 09000000 00000000   # 28 bytes
            02 01 0000                             # NBD_CMD_DISCONNECT v1
            0800 0100 02000000                     # NBD_ATTR_INDEX 2
            """)), Convert.ToHexString(NbdNetlinkMessages.BuildDisconnect(FamilyId, 9, 2)));

        Assert.Equal(Convert.ToHexString(Hex.Bytes("""
            14000000 1b00 0500 0a000000 00000000   # 20 bytes: all devices
            05 01 0000                             # NBD_CMD_STATUS v1
            """)), Convert.ToHexString(NbdNetlinkMessages.BuildStatus(FamilyId, 10, null)));

        Assert.Equal(Convert.ToHexString(Hex.Bytes("""
            1c000000 1b00 0500 0b000000 00000000
            05 01 0000
            0800 0100 04000000                     # NBD_ATTR_INDEX 4
            """)), Convert.ToHexString(NbdNetlinkMessages.BuildStatus(FamilyId, 11, 4)));
    }

    [Fact]
    public void Connect_refuses_a_request_the_kernel_would_refuse()
    {
        Assert.Throws<ArgumentException>(() => NbdNetlinkMessages.BuildConnect(FamilyId, 1, new NbdDeviceConfiguration { SizeBytes = 4096 }, []));
        Assert.Throws<ArgumentException>(() => NbdNetlinkMessages.BuildConnect(FamilyId, 1, new NbdDeviceConfiguration(), [3]));
        Assert.Throws<ArgumentException>(() => NbdNetlinkMessages.BuildReconfigure(FamilyId, 1, new NbdDeviceConfiguration(), [3]));
    }

    [Fact]
    public void Connect_reply_gives_the_index_the_kernel_chose()
    {
        // what nbd_connect_reply() sends: genlmsg_put_reply(NBD_CMD_CONNECT) + nla_put_u32(NBD_ATTR_INDEX)
        var datagram = Hex.Bytes("""
            1c000000 1b00 0000 05000000 391a0000   # reply to port 0x1a39, seq 5
            01 01 0000                             # NBD_CMD_CONNECT
            0800 0100 0e000000                     # NBD_ATTR_INDEX 14
            """);
        var message = Assert.Single(NetlinkMessage.ParseAll(datagram));
        Assert.Equal(5u, message.Sequence);
        Assert.Equal(14u, NbdNetlinkMessages.ParseConnectReply(message));
    }

    [Fact]
    public void Status_reply_lists_each_device_with_its_connected_flag()
    {
        // populate_nbd_status(): nla_nest_start_noflag (no NLA_F_NESTED) for the list and each item
        var datagram = Hex.Bytes("""
            4c000000 1b00 0000 07000000 391a0000   # 76 bytes
            05 01 0000                             # NBD_CMD_STATUS
            3800 0900                              # NBD_ATTR_DEVICE_LIST (9), 56 bytes
              1400 0100                            #   NBD_DEVICE_ITEM, 20 bytes
                0800 0100 00000000                 #     NBD_DEVICE_INDEX 0
                0500 0200 01 000000                #     NBD_DEVICE_CONNECTED u8 1 (len 5, +3 padding)
              1400 0100                            #   NBD_DEVICE_ITEM
                0800 0100 01000000                 #     NBD_DEVICE_INDEX 1
                0500 0200 00 000000                #     NBD_DEVICE_CONNECTED 0
              0c00 0100                            #   NBD_DEVICE_ITEM without CONNECTED, 12 bytes
                0800 0100 07000000                 #     NBD_DEVICE_INDEX 7
            """);
        var message = Assert.Single(NetlinkMessage.ParseAll(datagram));
        var devices = NbdNetlinkMessages.ParseStatusReply(message);
        Assert.Equal([new NbdDeviceStatus(0, true), new NbdDeviceStatus(1, false), new NbdDeviceStatus(7, false)], devices);
        Assert.Equal("/dev/nbd7", devices[2].DevicePath);
    }

    [Fact]
    public void Link_dead_notification_names_the_device()
    {
        var datagram = Hex.Bytes("""
            1c000000 1b00 0000 00000000 00000000   # multicast: seq 0, pid 0
            04 01 0000                             # NBD_CMD_LINK_DEAD
            0800 0100 03000000                     # NBD_ATTR_INDEX 3
            """);
        var message = Assert.Single(NetlinkMessage.ParseAll(datagram));
        Assert.True(NbdNetlinkMessages.TryParseLinkDead(message, FamilyId, out var index, out var malformed));
        Assert.Equal(3u, index);
        Assert.Null(malformed);
        Assert.False(NbdNetlinkMessages.TryParseLinkDead(message, familyId: 0x30, out _, out malformed));
        Assert.Null(malformed);
    }

    [Theory]
    [InlineData("12000000 1b00 0000 00000000 00000000 0401", "generic netlink message shorter than its genlmsghdr")]
    [InlineData("14000000 1b00 0000 00000000 00000000 04010000", "NBD_CMD_LINK_DEAD without NBD_ATTR_INDEX")]
    [InlineData("1a000000 1b00 0000 00000000 00000000 04010000 0600 0100 0300", null)]
    public void A_short_or_incomplete_link_dead_notification_is_a_clear_failure_not_an_exception(string hex, string? expected)
    {
        var message = Assert.Single(NetlinkMessage.ParseAll(Hex.Bytes(hex)));
        Assert.False(NbdNetlinkMessages.TryParseLinkDead(message, FamilyId, out _, out var malformed));
        Assert.NotNull(malformed);
        if (expected != null) Assert.Equal(expected, malformed);
    }
}
