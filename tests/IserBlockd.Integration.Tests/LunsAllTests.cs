using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary><c>"luns": "all"</c> against tgtd: every disk LUN is mapped by the template (the controller LUN 0 is not); a LUN
/// added at the target is mapped when tgtd says REPORTED LUNS DATA HAS CHANGED; a LUN removed is unmapped by a rescan.</summary>
[Trait("Category", "RealPeer")]
public sealed class LunsAllTests
{
    [Fact]
    public async Task Every_disk_lun_is_mapped_and_the_mapping_follows_luns_added_and_removed_at_the_target()
    {
        await using var target = await TestTarget.StartAsync((1, 16L << 20, 512), (2, 8L << 20, 512));
        using var dir = new TempDirectory("luns-all");
        var control = dir.File("run/control");
        var config = dir.File("iserblockd.json");
        File.WriteAllText(config, $$"""
            { "initiatorName": "{{TestTarget.InitiatorName}}", "controlSocket": "{{control}}",
              "nodes": [ { "name": "san", "portals": ["{{target.Portal}}"], "target": "{{target.Iqn}}",
                           "luns": "all", "lunTemplate": { "nbd": { "socket": "{{dir.File("lun-{lun}.sock")}}" } } } ] }
            """);
        using var notify = new NotifySocket(dir.File("notify"));
        await using var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });
        await notify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));
        Task<ProcessResult> Ctl(params string[] args) => ExternalProcess.RunAsync(Executables.Iserblockctl, [.. args, "--control-socket", control]);
        string Uri(int lun) => $"nbd+unix:///san-{lun}?socket={dir.File($"lun-{lun}.sock")}";

        Assert.Contains($"\"export-size\": {16L << 20}", await Tools.RunAsync("nbdinfo", "--json", Uri(1)));
        Assert.Contains($"\"export-size\": {8L << 20}", await Tools.RunAsync("nbdinfo", "--json", Uri(2)));
        Assert.False(File.Exists(dir.File("lun-0.sock"))); // tgtd's LUN 0 is its controller, not a disk

        // LUN 3 added: tgtd raises REPORTED LUNS DATA HAS CHANGED on the session's next command (I/O on LUN 1 here).
        await target.Target.AddLunAsync(3, 4L << 20);
        await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x33 0 64k", Uri(1));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!File.Exists(dir.File("lun-3.sock")) && DateTime.UtcNow < deadline)
        {
            await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "read 0 4k", Uri(1)); // each command may carry the unit attention
            await Task.Delay(200);
        }
        Assert.True(File.Exists(dir.File("lun-3.sock")), "LUN 3 was not mapped after the target added it");
        Assert.Contains($"\"export-size\": {4L << 20}", await Tools.RunAsync("nbdinfo", "--json", Uri(3)));
        await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x3a 1M 64k", Uri(3));
        Assert.Equal(0x3a, File.ReadAllBytes(target.BackingFile(3))[1 << 20]);

        // LUN 2 removed at the target: iserblockctl rescan unmaps it (nothing uses it) and keeps the others.
        await target.Target.DeleteLunAsync(2);
        var rescan = await Ctl("rescan", "san");
        Assert.True(rescan.ExitCode == 0, rescan.StandardError);
        Assert.Contains("LUN 2 is gone from the target: unmapped", rescan.StandardOutput);
        Assert.False(File.Exists(dir.File("lun-2.sock")));
        var list = await Ctl("list");
        Assert.Contains(dir.File("lun-3.sock"), list.StandardOutput);
        Assert.DoesNotContain(dir.File("lun-2.sock"), list.StandardOutput);
        Assert.Contains($"\"export-size\": {16L << 20}", await Tools.RunAsync("nbdinfo", "--json", Uri(1)));

        daemon.Signal(15);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
    }
}
