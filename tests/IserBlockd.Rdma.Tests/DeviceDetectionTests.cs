using System.Net;

namespace IserBlockd.Rdma.Tests;

/// <summary>
/// On a host without RDMA (the build machines) every entry point says so clearly instead of crashing; with RDMA
/// (the VM test bed) the same calls find the devices. The expectations follow what /sys says about this host.
/// </summary>
public sealed class DeviceDetectionTests
{
    private static bool HostHasRdma =>
        Directory.Exists("/sys/class/infiniband") && Directory.EnumerateFileSystemEntries("/sys/class/infiniband").Any()
        && File.Exists("/dev/infiniband/rdma_cm");

    [Fact]
    public void Probe_reports_availability_and_a_reason()
    {
        var availability = RdmaDevices.Probe();
        Assert.Equal(HostHasRdma, availability.IsAvailable);
        if (availability.IsAvailable)
        {
            Assert.NotEmpty(availability.DeviceNames);
            Assert.StartsWith("RDMA devices: ", availability.Reason);
        }
        else
        {
            Assert.Empty(availability.DeviceNames);
            Assert.StartsWith("no RDMA device", availability.Reason);
        }
    }

    [Fact]
    public void Opening_an_event_channel_without_RDMA_throws_RdmaUnavailable()
    {
        if (HostHasRdma)
        {
            using var channel = RdmaEventChannel.Create();
            using var id = channel.CreateId();
            Assert.Null(id.Device); // not bound to a device before address resolution
            return;
        }
        var e = Assert.Throws<RdmaUnavailableException>(() => RdmaEventChannel.Create());
        Assert.Equal("rdma_create_event_channel failed: ENODEV: No such device (no RDMA device on this host: no RDMA NIC, or the rdma_cm/ib_uverbs kernel modules are not loaded)", e.Message);
    }

    [Fact]
    public void Opening_the_device_list_without_RDMA_throws_RdmaUnavailable()
    {
        if (HostHasRdma)
        {
            using var list = RdmaDevices.Open();
            Assert.NotEmpty(list.Devices);
            Assert.All(list.Devices, d => Assert.True(d.QueryLimits().MaxQueuePairWorkRequests > 0));
            return;
        }
        var e = Assert.Throws<RdmaUnavailableException>(RdmaDevices.Open);
        Assert.Contains("no RDMA device", e.Message);
    }

    [Fact]
    public async Task Reachability_of_a_portal_without_RDMA_is_a_clear_no()
    {
        var check = await RdmaReachability.CheckAsync(new IPEndPoint(IPAddress.Loopback, 3260), TimeSpan.FromSeconds(2));
        Assert.False(check.IsReachable); // rxe on lo does not route, so this holds in the VM too
        Assert.Null(check.DeviceName);
        Assert.False(string.IsNullOrWhiteSpace(check.Reason));
        if (!HostHasRdma) Assert.StartsWith("no RDMA device", check.Reason);
    }
}
