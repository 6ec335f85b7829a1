using System.Diagnostics;
using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary>The target dies (SIGKILL) and comes back on the same backing file: clients see a pause, not an error,
/// within the replacement timeout; past it, I/O fails with EIO and works again once the target is back.</summary>
[Trait("Category", "RealPeer")]
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

    [Fact]
    public async Task A_silent_target_is_detected_by_nop_out_and_the_session_reinstated_when_it_answers_again()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512));
        using var dir = new TempDirectory("recovery");
        var socket = dir.File("nbd.sock");
        File.WriteAllText(dir.File("iserblockd.json"), $$"""
            { "initiatorName": "{{TestTarget.InitiatorName}}", "controlSocket": "{{dir.File("run/control")}}",
              "nopInterval": 1, "nopTimeout": 1, "loginTimeout": 2, "replacementTimeout": 60,
              "reconnect": { "minDelay": 0.5, "maxDelay": 2 },
              "nodes": [ { "name": "a", "portals": ["{{target.Portal}}"], "target": "{{target.Iqn}}",
                           "luns": [ { "lun": 1, "nbd": { "socket": "{{socket}}", "exportName": "" } } ] } ] }
            """);
        using var notify = new NotifySocket(dir.File("notify"));
        await using var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", dir.File("iserblockd.json")],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });
        await notify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));
        var uri = $"nbd+unix:///?socket={socket}";
        await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x6b 2097152 131072", uri);

        // SIGSTOP: the target's TCP connections stay up (the kernel keeps them) but nothing answers any more.
        var tgtd = TgtdProcessId(target.Portal);
        await Tools.RunAsync("kill", "-STOP", tgtd);
        try
        {
            await using var reader = ExternalProcess.Start("qemu-io", ["-f", "raw", "-c", "read -P 0x6b 2097152 131072", uri]);
            await daemon.WaitForLineAsync(l => l.Contains("did not answer a NOP-Out", StringComparison.Ordinal), TimeSpan.FromSeconds(20));
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.False(reader.HasExited, $"the read ended while the target was silent:\n{reader.StandardOutput}{reader.StandardError}");

            await Tools.RunAsync("kill", "-CONT", tgtd);
            Assert.Equal(0, await reader.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.DoesNotContain("Pattern verification failed", reader.StandardOutput);
            Assert.DoesNotContain("error", reader.StandardOutput + reader.StandardError, StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            await ExternalProcess.RunAsync("kill", ["-CONT", tgtd]);
        }
        await daemon.WaitForLineAsync(l => l.Contains("reinstated", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        daemon.Signal(15);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Empty(await target.SessionsAsync());
    }

    /// <summary>The tgtd (not its watcher shell) listening on <paramref name="portal"/>.</summary>
    private static string TgtdProcessId(string portal)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            var pid = Path.GetFileName(dir);
            if (!pid.All(char.IsAsciiDigit)) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "comm")).Trim() != "tgtd") continue;
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Contains($"portal={portal}", StringComparison.Ordinal)) return pid;
            }
            catch (IOException)
            {
            }
        }
        throw new InvalidOperationException($"no tgtd process for {portal}");
    }
}
