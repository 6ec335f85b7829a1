using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.Integration.Tests;

/// <summary>NBD_CMD_CACHE from a real client (libnbd's Python binding, as nbdsh runs it) through
/// <c>iserblockd export</c> to tgtd: PRE-FETCH, or the fallback where the LUN refuses it; data stays intact.</summary>
[Trait("Category", "RealPeer")]
public sealed class ExportCacheTests(ITestOutputHelper output)
{
    private const long Size = 64L << 20;

    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    public async Task Nbd_cache_requests_succeed_and_leave_the_data_intact(int blockSize)
    {
        await using var target = await TestTarget.StartAsync((1, Size, blockSize));
        using var dir = new TempDirectory("export-cache");
        await using var export = await ExportProcess.StartAsync(target, 1, "--socket", dir.File("nbd.sock"));

        // libnbd (python3-libnbd, the binding nbdsh runs; Debian's own python3, whatever python3 PATH finds first):
        // write, CACHE (aligned, unaligned, a whole MiB, the last block), read back; aio_cache as well
        var dataFile = dir.File("data.bin");
        var data = Tools.RandomBytes(4 << 20);
        File.WriteAllBytes(dataFile, data);
        var script = $$"""
            import nbd
            h = nbd.NBD()
            h.connect_uri("{{export.Ready}}")
            assert h.can_cache(), "the export does not offer NBD_CMD_CACHE"
            data = open("{{dataFile}}", "rb").read()
            h.pwrite(data, 0)
            h.cache(1 << 20, 0)
            h.cache(4096, 4096)
            h.cache(3 << 20, 1 << 20)
            bs = h.get_block_size(nbd.SIZE_MINIMUM)
            h.cache(3 * bs, 5 * bs)
            h.cache(4096, h.get_size() - 4096)
            cookie = h.aio_cache(2 << 20, 2 << 20)
            while not h.aio_command_completed(cookie):
                h.poll(-1)
            assert h.pread(4 << 20, 0) == data, "read back after CACHE differs"
            h.shutdown()
            print("cache ok")
            """;
        var result = await ExternalProcess.RunAsync("/usr/bin/python3", ["-c", script], TimeSpan.FromMinutes(2));
        output.WriteLine(result.StandardOutput + result.StandardError);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("cache ok", result.StandardOutput);

        Assert.Equal(0, await export.StopAsync());
        output.WriteLine(export.Process.StandardError);
        // what was written around the CACHE requests is on the target, byte for byte
        Assert.True(data.AsSpan().SequenceEqual(File.ReadAllBytes(target.BackingFile(1)).AsSpan(0, data.Length)), "backing file differs");
    }
}
