using IserBlockd.Daemon.Mappings;
using IserBlockd.TestSupport;

namespace IserBlockd.Daemon.Tests.Mappings;

/// <summary>The request size limit written to a (stand-in) sysfs queue directory; the real one is checked in the VM.</summary>
public sealed class KernelQueueLimitsTests : IDisposable
{
    private readonly TempDirectory _dir = new("iserblockd-sysfs");

    public void Dispose() => _dir.Dispose();

    private string Queue(uint index, string maxSectorsKb)
    {
        var queue = Path.Combine(_dir.Path, $"nbd{index}", "queue");
        Directory.CreateDirectory(queue);
        File.WriteAllText(Path.Combine(queue, "max_sectors_kb"), maxSectorsKb);
        return Path.Combine(queue, "max_sectors_kb");
    }

    [Fact]
    public void A_kernel_limit_above_what_the_device_takes_is_lowered()
    {
        var file = Queue(3, "1280\n");
        Assert.Equal(1024, KernelQueueLimits.LimitRequestSize(3, 1 << 20, _dir.Path));
        Assert.Equal("1024", File.ReadAllText(file));
    }

    [Fact]
    public void A_kernel_limit_already_within_the_device_is_left_alone()
    {
        var file = Queue(0, "1280\n");
        Assert.Equal(1280, KernelQueueLimits.LimitRequestSize(0, 32 << 20, _dir.Path));
        Assert.Equal("1280\n", File.ReadAllText(file));
    }

    [Fact]
    public void A_missing_device_is_an_IO_error_for_the_caller_to_log()
    {
        Assert.ThrowsAny<IOException>(() => KernelQueueLimits.LimitRequestSize(9, 1 << 20, _dir.Path));
    }
}
