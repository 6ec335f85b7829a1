using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Mappings;
using IserBlockd.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;

namespace IserBlockd.Daemon.Tests.Mappings;

/// <summary>The exposure layer over a stand-in device, checked with a real NBD client (nbdinfo, nbdcopy).</summary>
[Trait("Category", "RealPeer")]
public sealed class MappedLunTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new("iserblockd-map");
    private readonly NbdEndpointRegistry _endpoints = new(new NbdServerOptions(), NullLoggerFactory.Instance);
    private static readonly KernelDeviceOptions Kernel = new(TimeSpan.FromSeconds(150), "test", 1);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _endpoints.DisposeAsync();
        _dir.Dispose();
    }

    private Task<MappedLun> Map(LunMapping mapping, MemoryBlockDevice device) =>
        MappedLun.StartAsync("san1", mapping, device, _endpoints, Kernel, new NbdServerOptions(), NullLoggerFactory.Instance, CancellationToken.None);

    [Fact]
    public async Task Two_luns_share_a_socket_under_their_own_names_and_each_is_withdrawn_alone()
    {
        var socket = _dir.File("nbd.sock");
        var port = FreePort.Next();
        var a = await Map(new LunMapping(0, null, socket, new HostPort("127.0.0.1", port), "san1-0", false), new MemoryBlockDevice(8 << 20));
        var b = await Map(new LunMapping(1, null, socket, null, "san1-1", true), new MemoryBlockDevice(16 << 20, new MemoryBlockDeviceOptions { LogicalBlockSize = 4096 }));

        Assert.Equal([$"nbd+unix:///san1-0?socket={socket}", $"nbd://127.0.0.1:{port}/san1-0"], a.Exports);
        Assert.Equal([$"nbd+unix:///san1-1?socket={socket}"], b.Exports);

        var infoA = (await ExternalProcess.RunAsync("nbdinfo", ["--json", a.Exports[1]])).EnsureSuccess().StandardOutput;
        Assert.Contains("\"export-size\": 8388608", infoA);
        var infoB = (await ExternalProcess.RunAsync("nbdinfo", ["--json", b.Exports[0]])).EnsureSuccess().StandardOutput;
        Assert.Contains("\"export-size\": 16777216", infoB);
        Assert.Contains("\"block_size_minimum\": 4096", infoB);
        Assert.Contains("\"is_read_only\": true", infoB);

        await a.StopAsync(keepDeviceInUse: false);
        Assert.True(File.Exists(socket)); // b still serves there
        var gone = await ExternalProcess.RunAsync("nbdinfo", [a.Exports[0]]);
        Assert.NotEqual(0, gone.ExitCode);
        Assert.Equal(0, (await ExternalProcess.RunAsync("nbdinfo", [b.Exports[0]])).ExitCode);

        await b.StopAsync(keepDeviceInUse: false);
        Assert.False(File.Exists(socket)); // the last export closed the socket
    }

    [Fact]
    public async Task Data_written_through_an_export_reads_back_and_stop_flushes()
    {
        var device = new MemoryBlockDevice(4 << 20, new MemoryBlockDeviceOptions { TrackDurability = true });
        var lun = await Map(new LunMapping(0, null, _dir.File("d.sock"), null, "", false), device);
        var source = _dir.File("source.bin");
        var copy = _dir.File("copy.bin");
        File.WriteAllBytes(source, RandomBytes(4 << 20));

        (await ExternalProcess.RunAsync("nbdcopy", [source, lun.Exports[0]])).EnsureSuccess();
        (await ExternalProcess.RunAsync("nbdcopy", [lun.Exports[0], copy])).EnsureSuccess();
        Assert.Equal(File.ReadAllBytes(source), File.ReadAllBytes(copy));

        var flushesBefore = device.Statistics.Flushes;
        await lun.StopAsync(keepDeviceInUse: false);
        Assert.True(device.Statistics.Flushes > flushesBefore);
        device.SimulatePowerLoss();
        var after = new byte[4 << 20];
        device.Read(0, after);
        Assert.Equal(File.ReadAllBytes(source), after);
    }

    private static byte[] RandomBytes(int length)
    {
        var bytes = new byte[length];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }
}
