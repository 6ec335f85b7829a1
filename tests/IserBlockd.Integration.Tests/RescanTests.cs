using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary><c>iserblockctl rescan</c> against tgtd: a LUN grown at the target reaches new NBD connections, a LUN removed
/// at the target is unmapped, a LUN added is listed.</summary>
[Trait("Category", "RealPeer")]
public sealed class RescanTests
{
    [Fact]
    public async Task Rescan_follows_a_grown_lun_unmaps_a_removed_one_and_lists_a_new_one()
    {
        await using var target = await TestTarget.StartAsync((1, 16L << 20, 512), (2, 8L << 20, 512));
        using var dir = new TempDirectory("rescan");
        var control = dir.File("run/control");
        var config = dir.File("iserblockd.json");
        File.WriteAllText(config, $$"""
            { "initiatorName": "{{TestTarget.InitiatorName}}", "controlSocket": "{{control}}",
              "nodes": [ { "name": "san", "portals": ["{{target.Portal}}"], "target": "{{target.Iqn}}",
                           "luns": [ { "lun": 1, "nbd": { "socket": "{{dir.File("one.sock")}}" } },
                                     { "lun": 2, "nbd": { "socket": "{{dir.File("two.sock")}}" } } ] } ] }
            """);
        using var notify = new NotifySocket(dir.File("notify"));
        await using var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });
        await notify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));
        Task<ProcessResult> Ctl(params string[] args) => ExternalProcess.RunAsync(Executables.Iserblockctl, [.. args, "--control-socket", control]);
        var one = $"nbd+unix:///san-1?socket={dir.File("one.sock")}";
        await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x6c 0 1M", one);
        Assert.Contains($"\"export-size\": {16L << 20}", await Tools.RunAsync("nbdinfo", "--json", one));

        // Grow LUN 1's backing file; tgtd reads a LUN's size when the LUN is created, so the LUN is re-created on it.
        await target.Target.DeleteLunAsync(1);
        using (var f = new FileStream(target.BackingFile(1), FileMode.Open)) f.SetLength(32L << 20);
        await target.Target.AddLunAsync(1, 32L << 20);
        var grown = await Ctl("rescan", "san", "1");
        Assert.True(grown.ExitCode == 0, grown.StandardError);
        Assert.Contains($"LUN 1: resized from {16L << 20} to {32L << 20} bytes", grown.StandardOutput);
        Assert.Contains($"\"export-size\": {32L << 20}", await Tools.RunAsync("nbdinfo", "--json", one)); // a new connection
        Assert.DoesNotContain("verification failed", await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "read -P 0x6c 0 1M", one)); // data kept
        await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x6d 31M 1M", one); // the new end is writable
        Assert.Equal(0x6d, File.ReadAllBytes(target.BackingFile(1))[(32 << 20) - 1]);

        // LUN 2 removed and LUN 3 added at the target.
        await target.Target.DeleteLunAsync(2);
        await target.Target.AddLunAsync(3, 4L << 20);
        var changed = await Ctl("rescan", "san");
        Assert.True(changed.ExitCode == 0, changed.StandardError);
        Assert.Contains("LUN 2 is gone from the target: unmapped", changed.StandardOutput);
        Assert.Contains("LUN 1: 33554432 bytes, unchanged", changed.StandardOutput);
        Assert.Contains("not mapped: LUN 0, 3", changed.StandardOutput);
        Assert.False(File.Exists(dir.File("two.sock")));
        Assert.Equal(21, (await Ctl("rescan", "san", "2")).ExitCode);

        daemon.Signal(15);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
    }
}
