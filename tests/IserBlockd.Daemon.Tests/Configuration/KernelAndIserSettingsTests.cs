using System.Text;
using IserBlockd.BlockDev.Kernel;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Rdma;
using IserBlockd.Transport.Iser;

namespace IserBlockd.Daemon.Tests.Configuration;

/// <summary>The kernel NBD and iSER memory fields of the configuration file: defaults, values, errors, round trip.</summary>
public sealed class KernelAndIserSettingsTests
{
    private const string Node = """
        "nodes": [ { "name": "san1", "portals": ["192.0.2.10"], "target": "iqn.2003-01.org.example:disk1",
                     "luns": [ { "lun": 0, "device": "auto" } ] } ]
        """;

    private static DaemonSettings Parse(string fields) =>
        ConfigLoader.Parse(Encoding.UTF8.GetBytes("{ " + fields + (fields.Length > 0 ? ", " : "") + Node + " }"), "test.json");

    private static List<ConfigError> Errors(string fields) =>
        [.. Assert.Throws<ConfigException>(() => Parse(fields)).Errors];

    [Fact]
    public void Defaults_are_the_transport_pool_sizes_auto_attach_and_one_socket_per_cpu_up_to_four()
    {
        var settings = Parse("");

        Assert.Equal(KernelAttachMethod.Auto, settings.KernelNbdMethod);
        Assert.Equal(Math.Clamp(Environment.ProcessorCount, 1, 4), settings.KernelNbdConnections);
        Assert.Equal(128, settings.UblkQueueDepth);
        var defaults = new IserDeviceOptions();
        Assert.Equal(defaults.DataBuffers.SizeClasses, settings.IserBuffers.DataBuffers.SizeClasses);
        Assert.Equal(defaults.BounceBuffers.SizeClasses, settings.IserBuffers.BounceBuffers.SizeClasses);
        Assert.Equal(
            [new BufferSizeClass(4096, 256), new BufferSizeClass(64 * 1024, 64), new BufferSizeClass(256 * 1024, 32), new BufferSizeClass(1 << 20, 32)],
            settings.IserBuffers.DataBuffers.SizeClasses);
    }

    [Theory]
    [InlineData("auto", KernelAttachMethod.Auto)]
    [InlineData("netlink", KernelAttachMethod.Netlink)]
    [InlineData("ioctl", KernelAttachMethod.Ioctl)]
    public void Attach_method_is_read(string name, KernelAttachMethod method)
    {
        var settings = Parse($"\"kernelNbdMethod\": \"{name}\", \"kernelNbdConnections\": 2");
        Assert.Equal(method, settings.KernelNbdMethod);
        Assert.Equal(2, settings.KernelNbdConnections);
    }

    [Fact]
    public void Zero_copy_reads_are_on_by_default_and_off_turns_both_ways_off()
    {
        var on = Parse("");
        Assert.True(on.ZeroCopyReads);
        Assert.Equal(64 << 10, on.ServerOptions().SendPagesThreshold);
        var off = Parse("\"zeroCopyReads\": false");
        Assert.False(off.ZeroCopyReads);
        Assert.Equal(0, off.ServerOptions().SendPagesThreshold);
        Assert.False(ConfigLoader.Parse(Encoding.UTF8.GetBytes(ConfigDump.ToJson(off)), "dump.json").ZeroCopyReads);
        Assert.NotEmpty(Errors("\"zeroCopyReads\": \"no\""));
    }

    [Fact]
    public void The_poll_at_queue_depth_one_defaults_to_100_microseconds_and_0_turns_it_off()
    {
        var on = Parse("");
        Assert.Equal(100, on.LowDepthPollMicroseconds);
        Assert.Equal(TimeSpan.FromMicroseconds(100), on.ServerOptions().LowDepthPoller.Budget);
        Assert.NotSame(on.ServerOptions().LowDepthPoller, on.ServerOptions().LowDepthPoller); // one per daemon, not shared between two
        var off = Parse("\"lowDepthPollMicroseconds\": 0");
        Assert.False(off.ServerOptions().LowDepthPoller.Enabled);
        Assert.Equal(250, Parse("\"lowDepthPollMicroseconds\": 250").ServerOptions().LowDepthPoller.Budget.TotalMicroseconds);
        Assert.Equal(0, ConfigLoader.Parse(Encoding.UTF8.GetBytes(ConfigDump.ToJson(off)), "dump.json").LowDepthPollMicroseconds);
        Assert.Contains(Errors("\"lowDepthPollMicroseconds\": -1"), e => e.Path == "lowDepthPollMicroseconds");
        Assert.Contains(Errors("\"lowDepthPollMicroseconds\": 10001"), e => e.Path == "lowDepthPollMicroseconds");
        Assert.NotEmpty(Errors("\"lowDepthPollMicroseconds\": \"fast\""));
    }

    [Fact]
    public void Ublk_queue_depth_is_read_and_bounded()
    {
        Assert.Equal(32, Parse("\"ublkQueueDepth\": 32").UblkQueueDepth);
        Assert.Contains(Errors("\"ublkQueueDepth\": 0"), e => e.Path == "ublkQueueDepth" && e.Message.Contains("expected 1 to 4096"));
        Assert.Contains(Errors("\"ublkQueueDepth\": 5000"), e => e.Path == "ublkQueueDepth");
    }

    [Fact]
    public void Pool_sizes_are_read_in_any_order()
    {
        var settings = Parse("""
            "iser": {
              "dataBuffers": [ { "size": 1048576, "count": 8 }, { "size": 4096, "count": 64 } ],
              "bounceBuffers": [ { "size": 65536, "count": 4 } ]
            }
            """);
        Assert.Equal([new BufferSizeClass(1 << 20, 8), new BufferSizeClass(4096, 64)], settings.IserBuffers.DataBuffers.SizeClasses);
        Assert.Equal([new BufferSizeClass(65536, 4)], settings.IserBuffers.BounceBuffers.SizeClasses);
    }

    [Fact]
    public void Only_one_pool_given_keeps_the_default_of_the_other()
    {
        var settings = Parse("""
            "iser": { "bounceBuffers": [ { "size": 2097152, "count": 2 } ] }
            """);
        Assert.Equal(new IserDeviceOptions().DataBuffers.SizeClasses, settings.IserBuffers.DataBuffers.SizeClasses);
        Assert.Equal([new BufferSizeClass(2 << 20, 2)], settings.IserBuffers.BounceBuffers.SizeClasses);
    }

    [Fact]
    public void Bad_values_are_each_named_by_their_path()
    {
        var errors = Errors("""
            "kernelNbdConnections": 0, "kernelNbdMethod": "sysfs",
            "iser": {
              "dataBuffers": [ { "size": 6000, "count": 1 }, { "size": 65536 }, { "count": 3 }, { "size": 65536, "count": 0 },
                               { "size": 33554432, "count": 1 }, null, { "size": 16777216, "count": 200 } ],
              "bounceBuffers": []
            }
            """);
        Assert.Equal(
        [
            "kernelNbdConnections",
            "kernelNbdMethod",
            "iser.dataBuffers[0].size",
            "iser.dataBuffers[1].count",
            "iser.dataBuffers[2].size",
            "iser.dataBuffers[3].size",
            "iser.dataBuffers[3].count",
            "iser.dataBuffers[4].size",
            "iser.dataBuffers[5]",
            "iser.dataBuffers[6]",
            "iser.bounceBuffers",
        ], errors.Select(e => e.Path));
        Assert.Contains("expected 1 to 16, got 0", errors[0].Message);
        Assert.Contains("\"auto\", \"netlink\" or \"ioctl\"", errors[1].Message);
        Assert.Contains("power of two from 4096 to 16777216 bytes, got 6000", errors[2].Message);
        Assert.Contains("already the size of iser.dataBuffers[1]", errors[5].Message);
        Assert.Contains("more than 2 GiB", errors[9].Message);
    }

    [Fact]
    public void Data_pool_without_a_buffer_of_at_least_64_KiB_is_refused()
    {
        var error = Assert.Single(Errors("""
            "iser": { "dataBuffers": [ { "size": 4096, "count": 1024 }, { "size": 32768, "count": 64 } ] }
            """));
        Assert.Equal("iser.dataBuffers", error.Path);
        Assert.Contains("largest NBD request", error.Message);
    }

    [Fact]
    public void Wrong_types_and_unknown_fields_inside_iser_are_reported_by_the_schema_check()
    {
        var errors = Errors("""
            "kernelNbdConnections": "4",
            "iser": { "dataBuffers": { "size": 4096 }, "bounceBuffers": [ { "size": 65536, "count": 4, "pinned": true } ] }
            """);
        Assert.Equal(["kernelNbdConnections", "iser.dataBuffers", "iser.bounceBuffers[0].pinned"], errors.Select(e => e.Path));
    }

    [Fact]
    public void The_effective_configuration_round_trips_through_check_config_output()
    {
        var settings = Parse("""
            "kernelNbdMethod": "ioctl", "kernelNbdConnections": 3,
            "iser": { "dataBuffers": [ { "size": 524288, "count": 16 } ] }
            """);
        var json = ConfigDump.ToJson(settings);
        Assert.Contains("\"kernelNbdMethod\": \"ioctl\"", json);

        var again = ConfigLoader.Parse(Encoding.UTF8.GetBytes(json), "dump.json");
        Assert.Equal(KernelAttachMethod.Ioctl, again.KernelNbdMethod);
        Assert.Equal(3, again.KernelNbdConnections);
        Assert.Equal([new BufferSizeClass(512 * 1024, 16)], again.IserBuffers.DataBuffers.SizeClasses);
        Assert.Equal(settings.IserBuffers.BounceBuffers.SizeClasses, again.IserBuffers.BounceBuffers.SizeClasses);
    }
}
