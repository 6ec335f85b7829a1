using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary>tgtd → <c>iserblockd export</c> (the real executable) → real NBD clients.</summary>
[Trait("Category", "RealPeer")]
public sealed class ExportTests
{
    private const long Size = 64L << 20;

    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    public async Task Nbdcopy_round_trip_over_a_unix_socket_reaches_the_backing_file(int blockSize)
    {
        await using var target = await TestTarget.StartAsync((1, Size, blockSize));
        using var dir = new TempDirectory("export");
        await using var export = await ExportProcess.StartAsync(target, 1, "--socket", dir.File("nbd.sock"));
        Assert.Equal($"nbd+unix:///?socket={dir.File("nbd.sock")}", export.Ready);

        var info = await Tools.RunAsync("nbdinfo", "--json", export.Ready);
        Assert.Contains($"\"export-size\": {Size}", info);
        Assert.Contains($"\"block_size_minimum\": {blockSize}", info);
        Assert.Contains("\"can_flush\": true", info);
        Assert.Contains("\"can_multi_conn\": true", info);

        var source = dir.File("source.bin");
        File.WriteAllBytes(source, Tools.RandomBytes((int)Size));
        await Tools.RunAsync("nbdcopy", source, export.Ready);
        await Tools.RunAsync("nbdcopy", export.Ready, dir.File("back.bin"));
        Assert.True(File.ReadAllBytes(source).AsSpan().SequenceEqual(File.ReadAllBytes(dir.File("back.bin"))), "read back differs");

        Assert.Equal(0, await export.StopAsync());
        // everything answered was flushed to the target before the logout
        Assert.True(File.ReadAllBytes(source).AsSpan().SequenceEqual(File.ReadAllBytes(target.BackingFile(1))), "backing file differs");
    }

    [Fact]
    public async Task Two_exports_of_one_target_keep_their_own_sessions()
    {
        // Each export keeps its ISID across restarts (fencing); two exports of one target by one initiator must still
        // have different ones, or each login reinstates, and so cuts off, the other's session.
        await using var target = await TestTarget.StartAsync((1, Size, 512), (2, Size, 512));
        using var dir = new TempDirectory("export");
        await using var first = await ExportProcess.StartAsync(target, 1, "--socket", dir.File("one.sock"));
        await using var second = await ExportProcess.StartAsync(target, 2, "--socket", dir.File("two.sock"));
        for (var round = 0; round < 3; round++)
        {
            foreach (var export in new[] { first, second })
            {
                var pattern = $"0x{0x30 + round:x2}";
                await Tools.RunAsync("qemu-io", "-f", "raw", "-c", $"write -P {pattern} {round << 20} 65536", export.Ready);
                var read = await Tools.RunAsync("qemu-io", "-f", "raw", "-c", $"read -P {pattern} {round << 20} 65536", export.Ready);
                Assert.DoesNotContain("Pattern verification failed", read);
            }
        }
        foreach (var export in new[] { first, second })
            Assert.DoesNotContain("reinstat", export.Process.StandardError);
        Assert.Equal(0, await first.StopAsync());
        Assert.Equal(0, await second.StopAsync());
    }

    [Fact]
    public async Task Qemu_io_patterns_over_tcp_with_an_export_name_on_a_port_the_system_picks()
    {
        await using var target = await TestTarget.StartAsync((2, Size, 512));
        // Port 0, as --listen users expect: the ready line says which port was bound.
        await using var export = await ExportProcess.StartAsync(target, 2, "--listen", "127.0.0.1:0", "--export-name", "disk0");
        var ready = System.Text.RegularExpressions.Regex.Match(export.Ready, @"^nbd://127\.0\.0\.1:(\d+)/disk0$");
        Assert.True(ready.Success, export.Ready);
        Assert.InRange(int.Parse(ready.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 1, 65535);

        var writes = new[] { ("0xa5", 0L, 65536), ("0x3c", 1L << 20, 1 << 20), ("0x5f", Size - 4096, 4096), ("0x11", 12345 * 512L, 3 * 512) };
        foreach (var (pattern, offset, length) in writes)
            await Tools.RunAsync("qemu-io", "-f", "raw", "-c", $"write -P {pattern} {offset} {length}", export.Ready);
        foreach (var (pattern, offset, length) in writes)
        {
            var output = await Tools.RunAsync("qemu-io", "-f", "raw", "-c", $"read -P {pattern} {offset} {length}", export.Ready);
            Assert.DoesNotContain("Pattern verification failed", output);
        }
        // a region never written reads as zeroes
        var zero = await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "read -P 0 4194304 65536", export.Ready);
        Assert.DoesNotContain("Pattern verification failed", zero);
        Assert.Equal(0, await export.StopAsync());
    }

    [Fact]
    public async Task Fio_verify_at_queue_depth_32_over_several_connections()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512));
        using var dir = new TempDirectory("export");
        await using var export = await ExportProcess.StartAsync(target, 1, "--socket", dir.File("nbd.sock"));
        await Tools.FioVerifyAsync(export.Ready, "48M", iodepth: 32, rw: "randwrite", bs: "4k", "--numjobs=2", "--offset_increment=16M", "--size=16M");
        await Tools.FioVerifyAsync(export.Ready, "32M", iodepth: 8, rw: "write", bs: "1M");
        Assert.Equal(0, await export.StopAsync());
    }

    [Fact]
    public async Task Sigterm_flushes_and_logs_out_leaving_no_session_on_the_target()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512));
        using var dir = new TempDirectory("export");
        await using var export = await ExportProcess.StartAsync(target, 1, "--socket", dir.File("nbd.sock"));
        var during = await target.SessionsAsync();
        Assert.Equal(TestTarget.InitiatorName, Assert.Single(during).InitiatorName);

        Assert.Equal(0, await export.StopAsync());
        Assert.Empty(await target.SessionsAsync());
        Assert.False(File.Exists(dir.File("nbd.sock")));
        Assert.Contains("logged out of", export.Process.StandardError);
    }

    [Fact]
    public async Task Read_only_export_refuses_writes_with_eperm()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512));
        using var dir = new TempDirectory("export");
        await using var export = await ExportProcess.StartAsync(target, 1, "--socket", dir.File("nbd.sock"), "--read-only");
        Assert.Contains("\"is_read_only\": true", await Tools.RunAsync("nbdinfo", "--json", export.Ready));
        File.WriteAllBytes(dir.File("ones.bin"), Enumerable.Repeat((byte)1, 1 << 20).ToArray());
        var write = await ExternalProcess.RunAsync("nbdcopy", [dir.File("ones.bin"), export.Ready]);
        Assert.NotEqual(0, write.ExitCode);
        Assert.Contains("read-only", write.StandardError + write.StandardOutput, StringComparison.OrdinalIgnoreCase);
        ByteAssert.All(File.ReadAllBytes(target.BackingFile(1)).AsSpan(0, 1 << 20), 0);
        Assert.Equal(0, await export.StopAsync());
    }

    [Fact]
    public async Task Bad_arguments_and_unreachable_targets_give_one_line_errors_and_distinct_exit_codes()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512));
        using var dir = new TempDirectory("export");

        var usage = await ExternalProcess.RunAsync(Executables.Iserblockd,
            ["export", "--portal", target.Portal, "--target", target.Iqn, "--socket", dir.File("a"), "--listen", "127.0.0.1:1"]);
        Assert.Equal(7, usage.ExitCode); // ISCSI_ERR_INVAL, as iserblockctl
        Assert.Contains("give exactly one of --socket PATH, --listen ADDR:PORT or --device", usage.StandardError);

        var unreachable = await ExternalProcess.RunAsync(Executables.Iserblockd,
            ["export", "--portal", $"127.0.0.1:{FreePort.Next()}", "--target", target.Iqn, "--socket", dir.File("b"), "--initiator-name", TestTarget.InitiatorName]);
        Assert.Equal(4, unreachable.ExitCode); // ISCSI_ERR_TRANS, as iserblockctl
        Assert.Contains("connection refused", unreachable.StandardError);
        Assert.Empty(unreachable.StandardOutput);

        var unknown = await ExternalProcess.RunAsync(Executables.Iserblockd,
            ["export", "--portal", target.Portal, "--target", "iqn.2024-01.org.example:nothing-here", "--socket", dir.File("c"), "--initiator-name", TestTarget.InitiatorName]);
        Assert.Equal(21, unknown.ExitCode); // ISCSI_ERR_NO_OBJS_FOUND
        Assert.Contains("iserblockd: ", unknown.StandardError);
        Assert.Contains("not found", unknown.StandardError, StringComparison.OrdinalIgnoreCase);

        var noLun = await ExternalProcess.RunAsync(Executables.Iserblockd,
            ["export", "--portal", target.Portal, "--target", target.Iqn, "--lun", "7", "--socket", dir.File("d"), "--initiator-name", TestTarget.InitiatorName]);
        Assert.Equal(21, noLun.ExitCode);
        Assert.Contains("LUN 7", noLun.StandardError);
        Assert.Empty(await target.SessionsAsync()); // logged out after failing
    }

    [Fact]
    public async Task Device_ublk_on_a_kernel_without_ublk_fails_with_a_clear_message_and_logs_out()
    {
        if (File.Exists("/dev/ublk-control")) return;   // a kernel with ublk: the VM scenario ublk-daemon covers it
        await using var target = await TestTarget.StartAsync((1, Size, 512));

        var result = await ExternalProcess.RunAsync(Executables.Iserblockd,
            ["export", "--portal", target.Portal, "--target", target.Iqn, "--lun", "1", "--device", "ublk", "--initiator-name", TestTarget.InitiatorName]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("iserblockd: cannot attach a ublk device: /dev/ublk-control does not exist: this kernel has no ublk", result.StandardError);
        Assert.Contains("modprobe ublk_drv", result.StandardError);
        Assert.Empty(result.StandardOutput);
        Assert.Empty(await target.SessionsAsync());

        var bad = await ExternalProcess.RunAsync(Executables.Iserblockd,
            ["export", "--portal", target.Portal, "--target", target.Iqn, "--device", "/dev/ublkc0", "--initiator-name", TestTarget.InitiatorName]);
        Assert.Equal(7, bad.ExitCode); // ISCSI_ERR_INVAL, as any bad argument
        Assert.Contains("--device: expected /dev/nbdN, auto, ublk or /dev/ublkbN, got \"/dev/ublkc0\"", bad.StandardError);
    }

    [Fact]
    public async Task Chap_with_a_secret_file_and_a_refused_loose_secret_file()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512));
        await target.Target.RequireChapAsync("host1", "host1-secret-123");
        using var dir = new TempDirectory("export");
        var secret = dir.File("chap.secret");
        File.WriteAllText(secret, "host1-secret-123\n");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        await using (var export = await ExportProcess.StartAsync(target, 1, "--socket", dir.File("nbd.sock"), "--chap-user", "host1", "--chap-secret-file", secret))
        {
            Assert.Contains("\"export-size\"", await Tools.RunAsync("nbdinfo", "--json", export.Ready));
            Assert.Equal(0, await export.StopAsync());
            Assert.DoesNotContain("host1-secret-123", export.Process.StandardError);
        }

        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        var loose = await ExternalProcess.RunAsync(Executables.Iserblockd,
            ["export", "--portal", target.Portal, "--target", target.Iqn, "--socket", dir.File("x"), "--initiator-name", TestTarget.InitiatorName,
             "--chap-user", "host1", "--chap-secret-file", secret]);
        Assert.Equal(7, loose.ExitCode);
        Assert.Contains($"{secret} has mode 0604", loose.StandardError);

        File.SetUnixFileMode(secret, UnixFileMode.UserRead);
        File.WriteAllText(dir.File("wrong.secret"), "not-the-secret-9");
        File.SetUnixFileMode(dir.File("wrong.secret"), UnixFileMode.UserRead);
        var wrong = await ExternalProcess.RunAsync(Executables.Iserblockd,
            ["export", "--portal", target.Portal, "--target", target.Iqn, "--socket", dir.File("y"), "--initiator-name", TestTarget.InitiatorName,
             "--chap-user", "host1", "--chap-secret-file", dir.File("wrong.secret")]);
        Assert.Equal(24, wrong.ExitCode); // ISCSI_ERR_LOGIN_AUTH_FAILED
        Assert.Contains("authentication", wrong.StandardError, StringComparison.OrdinalIgnoreCase);
    }
}
