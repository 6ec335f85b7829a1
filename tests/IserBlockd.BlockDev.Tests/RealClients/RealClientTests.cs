using System.Net;
using System.Text.Json;
using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Tests.Server;
using IserBlockd.BlockDev.Tests.Support;
using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.RealClients;

/// <summary>
/// Our server against the real NBD clients people use: libnbd's nbdinfo and nbdcopy, qemu-io and
/// qemu-img, and fio's nbd engine — with verifying workloads, not just "no error".
/// </summary>
[Trait("Category", "RealPeer")]
[Trait("Category", "Integration")]
public class RealClientTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private async Task<ProcessResult> Run(string tool, params string[] arguments)
    {
        var result = await ExternalProcess.RunAsync(tool, arguments, Timeout);
        output.WriteLine($"$ {result.CommandLine}\n{result.StandardOutput}{result.StandardError}");
        return result.EnsureSuccess();
    }

    private static NbdExport MemoryExport(string name, long size, int logicalBlockSize = 512, string description = "",
        bool trackDurability = false) =>
        new(name, new MemoryBlockDevice(size, new MemoryBlockDeviceOptions
        {
            LogicalBlockSize = logicalBlockSize,
            PreferredBlockSize = Math.Max(4096, logicalBlockSize),
            MaxTransferBytes = 8 << 20,
            TrackDurability = trackDurability,
        }), description);

    private static MemoryBlockDevice Device(NbdExport export) => (MemoryBlockDevice)export.Device;

    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    public async Task Nbdinfo_reports_the_size_block_sizes_and_flags_we_advertise(int logicalBlockSize)
    {
        var export = MemoryExport("lun0", 96L << 20, logicalBlockSize, "a LUN");
        await using var server = new InProcessNbdServer(output, null, export);
        var result = await Run("nbdinfo", "--json", server.Uri("lun0"));
        using var json = JsonDocument.Parse(result.StandardOutput);
        Assert.True(json.RootElement.GetProperty("structured").GetBoolean());
        var info = json.RootElement.GetProperty("exports")[0];
        Assert.Equal("lun0", info.GetProperty("export-name").GetString());
        Assert.Equal("a LUN", info.GetProperty("description").GetString());
        Assert.Equal(96L << 20, info.GetProperty("export-size").GetInt64());
        Assert.Equal(logicalBlockSize, info.GetProperty("block_size_minimum").GetInt32());
        Assert.Equal(Math.Max(4096, logicalBlockSize), info.GetProperty("block_size_preferred").GetInt32());
        Assert.Equal(8 << 20, info.GetProperty("block_size_maximum").GetInt32());
        Assert.True(info.GetProperty("can_flush").GetBoolean());
        Assert.True(info.GetProperty("can_fua").GetBoolean());
        Assert.True(info.GetProperty("can_trim").GetBoolean());
        Assert.True(info.GetProperty("can_zero").GetBoolean());
        Assert.True(info.GetProperty("can_multi_conn").GetBoolean());
        Assert.True(info.GetProperty("can_df").GetBoolean());
        Assert.False(info.GetProperty("is_read_only").GetBoolean());
    }

    [Fact]
    public async Task Nbdinfo_list_shows_every_export()
    {
        await using var server = new InProcessNbdServer(output, null,
            MemoryExport("", 4 << 20, description: "default"), MemoryExport("lun1", 8 << 20, description: "second"));
        var result = await Run("nbdinfo", "--list", "--json", server.Uri());
        using var json = JsonDocument.Parse(result.StandardOutput);
        var exports = json.RootElement.GetProperty("exports").EnumerateArray()
            .ToDictionary(e => e.GetProperty("export-name").GetString()!, e => e);
        Assert.Equal(["", "lun1"], exports.Keys.Order());
        Assert.Equal(8L << 20, exports["lun1"].GetProperty("export-size").GetInt64());
        Assert.Equal("second", exports["lun1"].GetProperty("description").GetString());
    }

    [Fact]
    public async Task Nbdinfo_over_tcp()
    {
        await using var server = new InProcessNbdServer(output, null, MemoryExport("", 4 << 20));
        await using var tcp = server.Server.ListenTcp(new IPEndPoint(IPAddress.Loopback, 0));
        var result = await Run("nbdinfo", "--size", $"nbd://127.0.0.1:{tcp.Port}/");
        Assert.Equal((4L << 20).ToString(), result.StandardOutput.Trim());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task Nbdcopy_round_trip_is_byte_for_byte(int connections)
    {
        var export = MemoryExport("", 48L << 20);
        await using var server = new InProcessNbdServer(output, null, export);
        var source = server.Directory + "/source.img";
        var back = server.Directory + "/back.img";
        var data = new byte[40 << 20];
        new Random(connections).NextBytes(data);
        data.AsSpan(8 << 20, 4 << 20).Clear(); // a hole in the middle
        await File.WriteAllBytesAsync(source, data);
        await using (var f = File.OpenWrite(source)) f.SetLength(48L << 20);

        await Run("nbdcopy", $"--connections={connections}", "--requests=16", "--flush", source, server.Uri());
        await Run("nbdcopy", $"--connections={connections}", server.Uri(), back);
        var copied = await File.ReadAllBytesAsync(back);
        Assert.Equal(48L << 20, copied.Length);
        Assert.True(data.AsSpan().SequenceEqual(copied.AsSpan(0, data.Length)), "data read back differs");
        Assert.True(copied.AsSpan(data.Length).IndexOfAnyExcept((byte)0) < 0);
        await Run("cmp", "-n", (40 << 20).ToString(), source, back);
        Assert.True(Device(export).Statistics.Flushes >= 1);
    }

    [Fact]
    public async Task Qemu_io_pattern_writes_fua_zeroes_and_discard_read_back()
    {
        var export = MemoryExport("disk", 16L << 20);
        await using var server = new InProcessNbdServer(output, null, export);
        var result = await Run("qemu-io", "-f", "raw", server.Uri("disk"),
            "-c", "write -P 0xab 0 1M",
            "-c", "read -P 0xab 0 1M",
            "-c", "write -f -P 0xcd 1M 64k",
            "-c", "read -P 0xcd 1M 64k",
            "-c", "write -P 0x11 2M 1M",
            "-c", "write -z 2M 256k",
            "-c", "write -z -u 2304k 256k",
            "-c", "read -P 0 2M 512k",
            "-c", "read -P 0x11 2560k 512k",
            "-c", "write -P 0x22 4M 512k",
            "-c", "discard 4M 512k",
            "-c", "write -P 0x33 5M 4k",
            "-c", "flush",
            "-c", "read -P 0x33 5M 4k",
            "-c", "read -P 0xab 512 4k");
        Assert.DoesNotContain("verification failed", result.StandardOutput + result.StandardError, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("error", result.StandardOutput + result.StandardError, StringComparison.OrdinalIgnoreCase);

        var stats = Device(export).Statistics;
        Assert.True(stats.FuaWrites >= 1, "qemu-io -f should arrive as a FUA write");
        Assert.True(stats.WriteZeroes >= 2);
        Assert.True(stats.Trims >= 1);
        Assert.True(stats.Flushes >= 1);
        var check = new byte[4096];
        Device(export).Read(5 << 20, check);
        ByteAssert.All(check, 0x33);
        Assert.Contains(server.Logs.Lines, l => l.Contains("structured replies: True"));
    }

    [Fact]
    public async Task Qemu_io_unaligned_request_is_handled_by_qemu_with_our_block_size()
    {
        // qemu reads our minimum block size and does read-modify-write itself for a 100-byte write.
        var export = MemoryExport("", 4 << 20, logicalBlockSize: 4096);
        await using var server = new InProcessNbdServer(output, null, export);
        var result = await Run("qemu-io", "-f", "raw", server.Uri(),
            "-c", "write -P 0x42 0 8k", "-c", "write -P 0x77 100 100", "-c", "read -P 0x77 100 100", "-c", "read -P 0x42 200 3896");
        Assert.DoesNotContain("verification failed", result.StandardOutput + result.StandardError, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Qemu_img_sees_the_size_and_compares_equal_after_convert()
    {
        var export = MemoryExport("", 8L << 20);
        await using var server = new InProcessNbdServer(output, null, export);
        var image = server.Directory + "/img.raw";
        var data = new byte[8 << 20];
        new Random(3).NextBytes(data);
        await File.WriteAllBytesAsync(image, data);
        var info = await Run("qemu-img", "info", "--output=json", server.Uri());
        using (var json = JsonDocument.Parse(info.StandardOutput))
            Assert.Equal(8L << 20, json.RootElement.GetProperty("virtual-size").GetInt64());
        await Run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", image, server.Uri());
        await Run("qemu-img", "compare", "-f", "raw", "-F", "raw", image, server.Uri());
    }

    [Fact]
    public async Task Fio_verifies_crc32c_at_queue_depth_32_over_four_connections()
    {
        var export = MemoryExport("", 256L << 20);
        await using var server = new InProcessNbdServer(output, null, export);
        var result = await Run("fio", FioArguments(server, "verify", "64M", numjobs: 4, "--rw=randwrite", "--bs=4k",
            "--verify=crc32c", "--verify_fatal=1", "--do_verify=1"));
        Assert.Contains("err= 0", result.StandardOutput);
        Assert.True(Device(export).Statistics.Writes >= 4 * (64 << 20) / 4096);
        Assert.Contains(server.Logs.Lines, l => l.Contains("CanMultiConn"));
    }

    [Fact]
    public async Task Fio_verifies_mixed_block_sizes()
    {
        await using var server = new InProcessNbdServer(output, null, MemoryExport("", 128L << 20));
        var result = await Run("fio", FioArguments(server, "mixed", "32M", numjobs: 2, "--rw=randrw", "--bsrange=4k-1M",
            "--verify=crc32c", "--verify_fatal=1"));
        Assert.Contains("err= 0", result.StandardOutput);
    }

    [Fact]
    public async Task A_client_killed_mid_workload_leaves_the_others_verified()
    {
        var export = MemoryExport("", 512L << 20);
        await using var server = new InProcessNbdServer(output, null, export);
        // The victim writes hard into its own region and is killed halfway; the survivors verify theirs.
        await using var victim = ExternalProcess.Start("fio", FioArguments(server, "victim", "128M", numjobs: 1,
            "--rw=randwrite", "--bs=64k", "--offset=384M", "--time_based", "--runtime=60"));
        await victim.WaitForLineAsync(l => l.Contains("connected"), TimeSpan.FromSeconds(30));
        var survivors = ExternalProcess.RunAsync("fio", FioArguments(server, "survivor", "64M", numjobs: 3,
            "--rw=randwrite", "--bs=4k", "--verify=crc32c", "--verify_fatal=1"), Timeout);
        await Task.Delay(1500);
        Assert.False(victim.HasExited);
        victim.Kill();
        var result = await survivors;
        output.WriteLine(result.StandardOutput + result.StandardError);
        result.EnsureSuccess();
        Assert.Contains("err= 0", result.StandardOutput);
        await Wait.Until(() => server.Server.ConnectionCount == 0);
        Assert.Contains(server.Logs.Lines, l => l.Contains("disconnected"));
        // The server is still serving.
        await Run("nbdinfo", "--size", server.Uri());
    }

    private static string[] FioArguments(InProcessNbdServer server, string name, string size, int numjobs, params string[] extra) =>
    [
        $"--name={name}", "--ioengine=nbd", $"--uri={server.Uri()}", $"--size={size}", $"--numjobs={numjobs}",
        $"--offset_increment={size}", "--iodepth=32", "--group_reporting", "--randrepeat=0", .. extra,
    ];
}
