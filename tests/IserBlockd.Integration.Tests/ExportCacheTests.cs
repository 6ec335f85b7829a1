using System.Text.RegularExpressions;
using IserBlockd.TestSupport;
using IserBlockd.TestSupport.Istgt;
using IserBlockd.TestSupport.Tgtd;
using Xunit.Abstractions;

namespace IserBlockd.Integration.Tests;

/// <summary>NBD_CMD_CACHE from a real client (libnbd's Python binding, as nbdsh runs it) through
/// <c>iserblockd export</c>: against tgtd it becomes PRE-FETCH(16), which tgtd's rdwr backing store runs
/// (posix_fadvise WILLNEED, status GOOD: its debug log shows each one done); against istgt, which has no PRE-FETCH
/// (ILLEGAL REQUEST, "unsupported SCSI OP=0x90"), the export asks once and then answers CACHE itself. The data
/// stays intact either way.</summary>
[Trait("Category", "RealPeer")]
public sealed partial class ExportCacheTests(ITestOutputHelper output)
{
    private const long Size = 64L << 20;

    /// <summary>CACHE requests the script sends: five synchronous, one asynchronous.</summary>
    private const int CacheRequests = 6;

    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    public async Task Nbd_cache_requests_run_pre_fetch_at_tgtd_and_leave_the_data_intact(int blockSize)
    {
        // tgtd -d 1 logs every command its backing store finishes ("io done <cmd> <opcode> <result> ..."), and a failed
        // one as "io error": so the log shows whether PRE-FETCH (0x90) reached the backing store and succeeded
        await using var server = await TgtdServer.StartAsync(new TgtdOptions { Debug = 1 });
        var target = await server.CreateTargetAsync($"iqn.2024-01.org.iserblockd.test:{Guid.NewGuid():N}"[..52]);
        var backingFile = await target.AddLunAsync(1, Size, blockSize);
        await target.BindAsync();
        using var dir = new TempDirectory("export-cache");
        await using var export = await ExportProcess.StartAsync(server.Portal, target.Name, 1, "--socket", dir.File("nbd.sock"));

        var data = await RunCacheScriptAsync(dir, export.Ready);

        Assert.Equal(0, await export.StopAsync());
        output.WriteLine(export.Process.StandardError);
        var log = server.Log;
        var done = PreFetchDone().Count(log);
        output.WriteLine($"tgtd ran {done} PRE-FETCH commands to completion (status GOOD)");
        Assert.True(done >= CacheRequests, $"tgtd ran {done} PRE-FETCH commands for {CacheRequests} CACHE requests");
        Assert.DoesNotMatch(PreFetchFailed(), log);
        // what was written around the CACHE requests is on the target, byte for byte
        Assert.True(data.AsSpan().SequenceEqual(File.ReadAllBytes(backingFile).AsSpan(0, data.Length)),
            "backing file differs");
    }

    [Fact]
    public async Task Nbd_cache_requests_against_istgt_without_pre_fetch_ask_once_and_succeed()
    {
        await using var istgt = await IstgtServer.StartAsync(Size);
        using var dir = new TempDirectory("export-cache-istgt");
        await using var export = await ExportProcess.StartAsync(istgt.Portal, istgt.TargetName, 0, "--socket", dir.File("nbd.sock"));

        var data = await RunCacheScriptAsync(dir, export.Ready);

        Assert.Equal(0, await export.StopAsync());
        output.WriteLine(export.Process.StandardError);
        // istgt logs every command it does not know; the export asked once, took the refusal and stopped asking
        var refusals = Regex.Count(istgt.Log, "unsupported SCSI OP=0x90");
        output.WriteLine($"istgt refused PRE-FETCH {refusals} time(s) for {CacheRequests} CACHE requests");
        Assert.Equal(1, refusals);
        Assert.True(data.AsSpan().SequenceEqual(File.ReadAllBytes(istgt.BackingFile).AsSpan(0, data.Length)), "backing file differs");
    }

    /// <summary>libnbd (python3-libnbd, the binding nbdsh runs; Debian's own python3, whatever python3 PATH finds first):
    /// write 4 MiB, CACHE (a whole MiB, aligned, unaligned, odd blocks, nearly the whole LUN; aio_cache as well), read
    /// back. Returns the data written.</summary>
    private async Task<byte[]> RunCacheScriptAsync(TempDirectory dir, string uri)
    {
        var dataFile = dir.File("data.bin");
        var data = Tools.RandomBytes(4 << 20);
        File.WriteAllBytes(dataFile, data);
        var script = $$"""
            import nbd
            h = nbd.NBD()
            h.connect_uri("{{uri}}")
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
        return data;
    }

    [GeneratedRegex(@"bs_rdwr_request\(\d+\) io done 0x[0-9a-f]+ 90 0 ")]
    private static partial Regex PreFetchDone();

    [GeneratedRegex(@"io error 0x[0-9a-f]+ 90 ")]
    private static partial Regex PreFetchFailed();
}
