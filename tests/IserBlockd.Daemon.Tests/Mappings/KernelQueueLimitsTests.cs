using IserBlockd.Daemon.Mappings;
using IserBlockd.TestSupport;

namespace IserBlockd.Daemon.Tests.Mappings;

/// <summary>The request size limit written to a (stand-in) sysfs queue directory; the real one is checked in the VM.</summary>
public sealed class KernelQueueLimitsTests : IDisposable
{
    private readonly TempDirectory _dir = new("iserblockd-sysfs");

    public void Dispose() => _dir.Dispose();

    private string Queue(uint index, string maxSectorsKb, string? maxHwSectorsKb = "32767\n")
    {
        var queue = Path.Combine(_dir.Path, $"nbd{index}", "queue");
        Directory.CreateDirectory(queue);
        File.WriteAllText(Path.Combine(queue, "max_sectors_kb"), maxSectorsKb);
        if (maxHwSectorsKb != null) File.WriteAllText(Path.Combine(queue, "max_hw_sectors_kb"), maxHwSectorsKb);
        return Path.Combine(queue, "max_sectors_kb");
    }

    [Fact]
    public void The_nbd_default_of_128_KiB_is_raised_to_what_the_device_takes()
    {
        var file = Queue(3, "128\n");
        Assert.Equal(1024, KernelQueueLimits.MatchRequestSize(3, 1 << 20, _dir.Path));
        Assert.Equal("1024", File.ReadAllText(file));
    }

    [Fact]
    public void A_limit_above_what_the_device_takes_is_lowered()
    {
        var file = Queue(1, "1280\n");
        Assert.Equal(512, KernelQueueLimits.MatchRequestSize(1, 512 << 10, _dir.Path));
        Assert.Equal("512", File.ReadAllText(file));
    }

    [Fact]
    public void A_device_that_takes_more_gets_the_kernel_default_for_disks_at_most()
    {
        var file = Queue(2, "128\n");
        Assert.Equal(KernelQueueLimits.DefaultMaxKb, KernelQueueLimits.MatchRequestSize(2, 32 << 20, _dir.Path));
        Assert.Equal("1280", File.ReadAllText(file));
    }

    [Fact]
    public void The_driver_limit_is_never_exceeded()
    {
        var file = Queue(4, "128\n", maxHwSectorsKb: "256\n");
        Assert.Equal(256, KernelQueueLimits.MatchRequestSize(4, 1 << 20, _dir.Path));
        Assert.Equal("256", File.ReadAllText(file));
    }

    [Fact]
    public void A_limit_already_right_is_not_written()
    {
        var file = Queue(0, "1024\n");
        Assert.Equal(1024, KernelQueueLimits.MatchRequestSize(0, 1 << 20, _dir.Path));
        Assert.Equal("1024\n", File.ReadAllText(file));
    }

    [Fact]
    public void A_missing_device_is_an_IO_error_for_the_caller_to_log()
    {
        Assert.ThrowsAny<IOException>(() => KernelQueueLimits.MatchRequestSize(9, 1 << 20, _dir.Path));
    }
}
