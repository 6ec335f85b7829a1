using System.Text.Json;
using IserBlockd.Daemon.Control;
using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary>The LUNs as tgtd has them: <c>iserblockctl luns</c> with and without the daemon, and <c>export</c> without <c>--lun</c>.</summary>
[Trait("Category", "RealPeer")]
public sealed class LunsTests
{
    [Fact]
    public async Task Luns_lists_every_lun_with_type_size_and_vendor_and_export_takes_the_first_disk()
    {
        await using var target = await TestTarget.StartAsync((1, 16L << 20, 512), (3, 8L << 20, 4096));
        await target.Target.SetLunParametersAsync(3, "vendor_id=ISERTEST,product_id=LUN-THREE");
        using var dir = new TempDirectory("luns");

        var direct = await ExternalProcess.RunAsync(Executables.Iserblockctl,
            ["luns", "--portal", target.Portal, "--target", target.Iqn, "-I", TestTarget.InitiatorName, "-o", "json", "--control-socket", dir.File("none")]);
        Assert.True(direct.ExitCode == 0, direct.StandardError);
        var luns = JsonSerializer.Deserialize(direct.StandardOutput, ControlOutputJsonContext.Default.ListLunDescription)!;
        Assert.Equal([0, 1, 3], luns.Select(l => l.Lun));
        Assert.Equal("storage", luns[0].Type); // tgtd's controller LUN
        Assert.Null(luns[0].SizeBytes);
        Assert.Equal(("disk", 16L << 20, 512), (luns[1].Type, luns[1].SizeBytes!.Value, luns[1].BlockSize!.Value));
        Assert.Equal(("disk", 8L << 20, 4096), (luns[2].Type, luns[2].SizeBytes!.Value, luns[2].BlockSize!.Value));
        Assert.Equal(("ISERTEST", "LUN-THREE"), (luns[2].Vendor, luns[2].Product));
        Assert.All(luns, l => Assert.False(l.Mapped));
        Assert.Empty(await target.SessionsAsync()); // logged out

        var text = await ExternalProcess.RunAsync(Executables.Iserblockctl,
            ["luns", "-p", target.Portal, "-T", target.Iqn, "-I", TestTarget.InitiatorName, "--control-socket", dir.File("none")]);
        Assert.Equal(0, text.ExitCode);
        Assert.Contains(text.StandardOutput.Split('\n'), l => l.StartsWith("3 ", StringComparison.Ordinal) && l.Contains("disk") && l.Contains("8 MiB") && l.Contains("4096") && l.Contains("LUN-THREE") && l.EndsWith("no", StringComparison.Ordinal));

        // export without --lun: LUN 0 is tgtd's controller; the first disk is LUN 1, and stderr says so.
        await using (var export = ExternalProcess.Start(Executables.Iserblockd,
            ["export", "--portal", target.Portal, "--target", target.Iqn, "--socket", dir.File("e.sock"), "-I", TestTarget.InitiatorName]))
        {
            var ready = await export.WaitForLineAsync(l => l.StartsWith("ready: ", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
            Assert.Contains("using LUN 1", export.StandardError.Replace("serving LUN 1", "using LUN 1", StringComparison.Ordinal));
            Assert.Contains($"\"export-size\": {16L << 20}", await Tools.RunAsync("nbdinfo", "--json", ready["ready: ".Length..]));
            export.Signal(15);
            Assert.Equal(0, await export.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        // Through the daemon: LUN 3 mapped; a LUN added with tgtadm meanwhile shows up; a missing LUN is 21 for map too.
        var control = dir.File("run/control");
        var config = dir.File("iserblockd.json");
        File.WriteAllText(config, $$"""
            { "initiatorName": "{{TestTarget.InitiatorName}}", "controlSocket": "{{control}}",
              "nodes": [ { "name": "san", "portals": ["{{target.Portal}}"], "target": "{{target.Iqn}}",
                           "luns": [ { "lun": 3, "nbd": { "socket": "{{dir.File("three.sock")}}" } } ] } ] }
            """);
        using var notify = new NotifySocket(dir.File("notify"));
        await using var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });
        await notify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));
        await target.Target.AddLunAsync(5, 4L << 20);
        var viaDaemon = await ExternalProcess.RunAsync(Executables.Iserblockctl, ["luns", "san", "-o", "json", "--control-socket", control]);
        Assert.True(viaDaemon.ExitCode == 0, viaDaemon.StandardError);
        var daemonLuns = JsonSerializer.Deserialize(viaDaemon.StandardOutput, ControlOutputJsonContext.Default.ListLunDescription)!;
        Assert.Equal([0, 1, 3, 5], daemonLuns.Select(l => l.Lun));
        Assert.True(daemonLuns[2].Mapped);
        Assert.Equal($"nbd+unix:///san-3?socket={dir.File("three.sock")}", Assert.Single(daemonLuns[2].Exports!));
        Assert.False(daemonLuns[1].Mapped);
        Assert.Equal(4L << 20, daemonLuns[3].SizeBytes);

        // Direct, with the daemon running: "mapped" comes from the daemon.
        var directMapped = await ExternalProcess.RunAsync(Executables.Iserblockctl,
            ["luns", "-p", target.Portal, "-T", target.Iqn, "-I", "iqn.2024-01.org.iserblockd:other-host", "-o", "json", "--control-socket", control]);
        Assert.True(directMapped.ExitCode == 0, directMapped.StandardError);
        Assert.True(JsonSerializer.Deserialize(directMapped.StandardOutput, ControlOutputJsonContext.Default.ListLunDescription)!.Single(l => l.Lun == 3).Mapped);

        var missing = await ExternalProcess.RunAsync(Executables.Iserblockctl, ["map", "san", "9", "--socket", dir.File("nine.sock"), "--control-socket", control]);
        Assert.Equal(21, missing.ExitCode);
        Assert.Equal(21, (await ExternalProcess.RunAsync(Executables.Iserblockctl, ["luns", "nosuch", "--control-socket", control])).ExitCode);

        daemon.Signal(15);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
    }
}
