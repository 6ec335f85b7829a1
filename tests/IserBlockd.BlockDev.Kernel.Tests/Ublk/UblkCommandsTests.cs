using IserBlockd.BlockDev.Kernel.Ublk;

namespace IserBlockd.BlockDev.Kernel.Tests.Ublk;

/// <summary>
/// The parts of ublk's protocol that Debian 12's linux-libc-dev (6.1) predates, against the values of later
/// kernels' linux/ublk_cmd.h: the ioctl-encoded command numbers (UBLK_U_*), user copy's positions, the
/// feature bits of 6.4/6.5.
/// </summary>
public class UblkCommandsTests
{
    [Theory]
    [InlineData(UblkCommands.AddDevice, 0xC0207504u)]      // UBLK_U_CMD_ADD_DEV = _IOWR('u', 0x04, struct ublksrv_ctrl_cmd)
    [InlineData(UblkCommands.DeleteDevice, 0xC0207505u)]
    [InlineData(UblkCommands.StartDevice, 0xC0207506u)]
    [InlineData(UblkCommands.StopDevice, 0xC0207507u)]
    [InlineData(UblkCommands.SetParams, 0xC0207508u)]
    [InlineData(UblkCommands.StartUserRecovery, 0xC0207510u)]
    [InlineData(UblkCommands.EndUserRecovery, 0xC0207511u)]
    [InlineData(UblkCommands.GetDeviceInfo, 0x80207502u)]  // _IOR
    [InlineData(UblkCommands.GetParams, 0x80207509u)]
    [InlineData(UblkCommands.GetFeatures, 0x80207513u)]
    public void Control_commands_are_ioctl_encoded(uint command, uint expected) => Assert.Equal(expected, UblkCommands.ControlOp(command));

    [Fact]
    public void Io_commands_are_ioctl_encoded()
    {
        Assert.Equal(0xC0107520u, UblkCommands.IoOp(UblkCommands.FetchRequest));           // UBLK_U_IO_FETCH_REQ
        Assert.Equal(0xC0107521u, UblkCommands.IoOp(UblkCommands.CommitAndFetchRequest));  // UBLK_U_IO_COMMIT_AND_FETCH_REQ
    }

    [Fact]
    public void User_copy_positions_put_queue_tag_and_offset_where_the_driver_reads_them()
    {
        // UBLKSRV_IO_BUF_OFFSET + (q_id << UBLK_QID_OFF) + (tag << UBLK_TAG_OFF) + offset; UBLK_TAG_OFF = 25, UBLK_QID_OFF = 41
        Assert.Equal(0x80000000L, UblkCommands.UserCopyPosition(0, 0));
        Assert.Equal(0x80000000L + (3L << 25) + 512, UblkCommands.UserCopyPosition(0, 3, 512));
        Assert.Equal(0x80000000L + (2L << 41) + (4095L << 25), UblkCommands.UserCopyPosition(2, 4095));
        Assert.Equal(32 << 20, UblkCommands.MaxIoBufferBytes);
    }

    [Fact]
    public void Descriptor_areas_are_one_maximal_queue_apart_and_page_rounded()
    {
        // each queue's area starts at q * round_up(UBLK_MAX_QUEUE_DEPTH * sizeof(ublksrv_io_desc), PAGE_SIZE)
        Assert.Equal((0L, 4096), UblkCommands.DescriptorArea(0, 128, 4096));       // 128 * 24 = 3072 -> one page
        Assert.Equal((98304L, 8192), UblkCommands.DescriptorArea(1, 256, 4096));   // 4096 * 24 = 98304
        Assert.Equal((3 * 98304L, 98304), UblkCommands.DescriptorArea(3, 4096, 4096));
    }

    [Fact]
    public void Feature_bits_of_later_kernels()
    {
        Assert.Equal(1ul << 6, (ulong)UblkFeatures.CommandIoctlEncode);
        Assert.Equal(1ul << 7, (ulong)UblkFeatures.UserCopy);
    }

    [Fact]
    public void Backend_tags_are_stable_and_distinct()
    {
        var a = UblkDeviceOptions.BackendTagOf("iserblockd:iqn.2003-01.org.example:disk1:0");
        Assert.Equal(a, UblkDeviceOptions.BackendTagOf("iserblockd:iqn.2003-01.org.example:disk1:0"));
        Assert.NotEqual(a, UblkDeviceOptions.BackendTagOf("iserblockd:iqn.2003-01.org.example:disk1:1"));
        Assert.NotEqual(0ul, a);
        Assert.Equal(0ul, UblkDeviceOptions.BackendTagOf(null));
    }
}
