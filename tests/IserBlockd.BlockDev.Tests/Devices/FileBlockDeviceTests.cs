using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Tests.Support;
using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Devices;

public class FileBlockDeviceTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Creates_a_sparse_file_of_the_size_and_round_trips()
    {
        using var dir = new TempDirectory();
        using var device = FileBlockDevice.Open(dir.File("disk.img"), new FileBlockDeviceOptions { Size = 64 << 20 });
        Assert.Equal(64L << 20, device.Geometry.Size);
        Assert.True(AllocatedBytes(dir.File("disk.img")) < 1 << 20);
        var data = new byte[1 << 20];
        new Random(1).NextBytes(data);
        await device.WriteAsync(3 << 20, data, fua: true, CancellationToken.None);
        var back = new byte[data.Length];
        await device.ReadAsync(3 << 20, back, CancellationToken.None);
        Assert.Equal(data, back);
        await device.FlushAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Trim_and_write_zeroes_punch_holes_that_read_as_zeroes()
    {
        using var dir = new TempDirectory();
        var path = dir.File("disk.img");
        using var device = FileBlockDevice.Open(path, new FileBlockDeviceOptions { Size = 16 << 20 });
        await device.WriteAsync(0, Enumerable.Repeat((byte)7, 16 << 20).ToArray(), false, CancellationToken.None);
        var full = AllocatedBytes(path);
        await device.TrimAsync(0, 4 << 20, CancellationToken.None);
        await device.WriteZeroesAsync(8 << 20, 4 << 20, mayUnmap: true, CancellationToken.None);
        await device.WriteZeroesAsync(12 << 20, 1 << 20, mayUnmap: false, CancellationToken.None);
        var back = new byte[16 << 20];
        await device.ReadAsync(0, back, CancellationToken.None);
        Assert.True(back.AsSpan(0, 4 << 20).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(back.AsSpan(4 << 20, 4 << 20).IndexOfAnyExcept((byte)7) < 0);
        Assert.True(back.AsSpan(8 << 20, 5 << 20).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(back.AsSpan(13 << 20).IndexOfAnyExcept((byte)7) < 0);
        output.WriteLine($"allocated {full} -> {AllocatedBytes(path)} bytes");
        Assert.True(AllocatedBytes(path) <= full - (8 << 20), "holes were not punched");
    }

    [Fact]
    public async Task Read_only_file_exports_refuse_writes()
    {
        using var dir = new TempDirectory();
        var path = dir.File("ro.img");
        await File.WriteAllBytesAsync(path, new byte[1 << 20]);
        using var device = FileBlockDevice.Open(path, new FileBlockDeviceOptions { ReadOnly = true });
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        Assert.Equal(BlockError.PermissionDenied, client.WriteSync(0, new byte[512]).BlockError);
        Assert.Equal(0u, client.ReadSync(0, 4096).Error);
    }

    [Fact]
    [Trait("Category", "RealPeer")]
    public async Task Nbdcopy_round_trip_through_a_file_export()
    {
        using var dir = new TempDirectory();
        using var device = FileBlockDevice.Open(dir.File("backing.img"), new FileBlockDeviceOptions { Size = 32 << 20, LogicalBlockSize = 4096 });
        await using var server = new InProcessNbdServer(output, null, new NbdExport("file", device));
        var source = dir.File("source.img");
        var data = new byte[32 << 20];
        new Random(5).NextBytes(data);
        await File.WriteAllBytesAsync(source, data);
        (await ExternalProcess.RunAsync("nbdcopy", ["--flush", source, server.Uri("file")])).EnsureSuccess();
        Assert.Equal(data, await File.ReadAllBytesAsync(dir.File("backing.img")));
        (await ExternalProcess.RunAsync("nbdcopy", [server.Uri("file"), dir.File("back.img")])).EnsureSuccess();
        (await ExternalProcess.RunAsync("cmp", [source, dir.File("back.img")])).EnsureSuccess();
    }

    private static long AllocatedBytes(string path)
    {
        var result = ExternalProcess.RunAsync("stat", ["-c", "%b %B", path]).GetAwaiter().GetResult().EnsureSuccess();
        var parts = result.StandardOutput.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(parts[0]) * long.Parse(parts[1]);
    }
}
