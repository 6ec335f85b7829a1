using IserBlockd.BlockDev.Kernel.Nbd;

namespace IserBlockd.BlockDev.Kernel.Tests;

public class KernelAttachRequestTests
{
    [Fact]
    public void Features_become_the_transmission_flags_the_kernel_is_told()
    {
        var request = new KernelAttachRequest
        {
            Size = 1 << 30,
            LogicalBlockSize = 4096,
            Features = BlockDeviceFeatures.Flush | BlockDeviceFeatures.Fua | BlockDeviceFeatures.Trim | BlockDeviceFeatures.MultiConnection,
        };
        // HAS_FLAGS 1 | SEND_FLUSH 4 | SEND_FUA 8 | SEND_TRIM 0x20 | CAN_MULTI_CONN 0x100
        Assert.Equal(0x12dUL, request.TransmissionFlags);
        Assert.Equal(0x3UL, new KernelAttachRequest { Size = 512, LogicalBlockSize = 512, Features = BlockDeviceFeatures.ReadOnly }.TransmissionFlags);
    }

    [Fact]
    public void Configuration_carries_the_real_block_size_and_timeouts_in_seconds()
    {
        var request = new KernelAttachRequest
        {
            Size = 64 << 20,
            LogicalBlockSize = 512,
            IoTimeout = TimeSpan.FromSeconds(150),
            DeadConnectionTimeout = TimeSpan.FromMinutes(3),
            BackendIdentifier = "iqn.2024-01.test:t1/lun1",
        };
        var c = request.ToConfiguration(index: null);
        Assert.Null(c.Index);
        Assert.Equal(64UL << 20, c.SizeBytes);
        Assert.Equal(512UL, c.BlockSizeBytes);
        Assert.Equal(150UL, c.TimeoutSeconds);
        Assert.Equal(180UL, c.DeadConnectionTimeoutSeconds);
        Assert.Equal(NbdDeviceClientFlags.DestroyOnDisconnect, c.ClientFlags);
        Assert.Equal("iqn.2024-01.test:t1/lun1", c.BackendIdentifier);
    }

    [Theory]
    [InlineData(1 << 20, 1000, 1)]        // not a power of two
    [InlineData(1 << 20, 256, 1)]         // under 512
    [InlineData(1 << 20, 65536, 1)]       // over the page size
    [InlineData(1000, 512, 1)]            // size not a multiple of the block size
    [InlineData(0, 512, 1)]
    [InlineData(1 << 20, 512, 0)]
    [InlineData(1 << 20, 512, 2)]         // two connections without MultiConnection
    public void Requests_the_kernel_would_refuse_fail_first_with_a_reason(long size, int blockSize, int connections)
    {
        var request = new KernelAttachRequest { Size = size, LogicalBlockSize = blockSize, Connections = connections };
        var e = Assert.Throws<ArgumentException>(request.Validate);
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }

    [Fact]
    public async Task Attach_without_the_nbd_module_fails_clearly()
    {
        // this host has no nbd module: netlink has no "nbd" family and there is no /dev/nbd0
        if (Directory.Exists("/sys/module/nbd")) return;
        var request = new KernelAttachRequest { Size = 1 << 20, LogicalBlockSize = 512 };
        var e = await Assert.ThrowsAsync<KernelNbdException>(() =>
            KernelNbd.AttachAsync(request, (_, _) => Task.CompletedTask));
        Assert.Contains("/dev/nbd", e.Message);
        Assert.False(KernelNbd.NetlinkAvailable());
    }
}
