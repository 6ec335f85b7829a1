using System.Diagnostics;
using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary>The target dies (SIGKILL) and comes back on the same backing file: clients see a pause, not an error,
/// within the replacement timeout; past it, I/O fails with EIO and works again once the target is back.</summary>
public sealed class RecoveryTests
{
    private const long Size = 64L << 20;

    [Fact]
    public async Task Tgtd_killed_and_restarted_during_fio_verify_costs_no_error_and_no_data()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512));
        using var dir = new TempDirectory("recovery");
        await using var export = await ExportProcess.StartAsync(target, 1, "--socket", dir.File("nbd.sock"));

        // Rate-limited so that the target dies while fio is still writing; every block is verified at the end.
        await using var fio = ExternalProcess.Start("fio", ["--name=recovery", "--ioengine=nbd", $"--uri={export.Ready}", "--rw=randwrite",
            "--bs=4k", "--iodepth=16", "--size=40M", "--rate=6m", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1"]);
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.False(fio.HasExited, $"fio finished before the target was killed:\n{fio.StandardOutput}");

        await target.Server.KillAsync();
        await Task.Delay(TimeSpan.FromSeconds(4)); // I/O is held meanwhile
        Assert.False(fio.HasExited, $"fio ended while the target was down:\n{fio.StandardOutput}{fio.StandardError}");
        await target.Server.RestartAsync();

        var exit = await fio.WaitForExitAsync(TimeSpan.FromMinutes(3));
        Assert.True(exit == 0, $"fio failed ({exit}):\n{fio.StandardOutput}\n{fio.StandardError}");
        Assert.Contains("err= 0", fio.StandardOutput);
        Assert.DoesNotContain("verify: bad", fio.StandardOutput + fio.StandardError);
        Assert.Contains("reinstated", export.Process.StandardError);

        Assert.Equal(0, await export.StopAsync());
        Assert.Empty(await target.SessionsAsync());
    }

    [Fact]
    public async Task Past_the_replacement_timeout_io_fails_with_eio_and_recovers_when_the_target_returns()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512));
        using var dir = new TempDirectory("recovery");
        await using var export = await ExportProcess.StartAsync(target, 1, "--socket", dir.File("nbd.sock"), "--replacement-timeout", "3");
        await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x7e 1048576 65536", export.Ready);

        await target.Server.KillAsync();
        var clock = Stopwatch.StartNew();
        var failed = await ExternalProcess.RunAsync("qemu-io", ["-f", "raw", "-c", "read -P 0x7e 1048576 65536", export.Ready], TimeSpan.FromSeconds(60));
        clock.Stop();
        Assert.Contains("Input/output error", failed.StandardOutput + failed.StandardError);
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(30));
        await export.Process.WaitForLineAsync(l => l.Contains("replacement timeout", StringComparison.Ordinal), TimeSpan.FromSeconds(10));

        await target.Server.RestartAsync();
        await export.Process.WaitForLineAsync(l => l.Contains("reinstated", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        var again = await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "read -P 0x7e 1048576 65536", export.Ready);
        Assert.DoesNotContain("Pattern verification failed", again);
        Assert.Equal(0, await export.StopAsync());
    }
}
