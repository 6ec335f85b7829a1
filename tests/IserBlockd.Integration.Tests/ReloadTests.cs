using IserBlockd.Daemon.Control;
using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary>SIGHUP and <c>iserblockctl reload</c> against real tgtd targets: only the difference is applied, a broken
/// file changes nothing, and signals end the daemon only through its orderly stop.</summary>
[Trait("Category", "RealPeer")]
public sealed class ReloadTests
{
    private const long Size = 16L << 20;

    [Fact]
    public async Task Reload_applies_only_the_difference_and_a_broken_file_changes_nothing()
    {
        await using var a = await TestTarget.StartAsync((1, Size, 512), (2, Size, 512));
        await using var b = await TestTarget.StartAsync((1, Size, 512));
        using var dir = new TempDirectory("reload");
        var control = dir.File("run/control");
        var config = dir.File("iserblockd.json");
        string Config(string nodes) => $$"""
            { "initiatorName": "{{TestTarget.InitiatorName}}", "controlSocket": "{{control}}", "nodes": [ {{nodes}} ] }
            """;
        var nodeA = $$"""{ "name": "a", "portals": ["{{a.Portal}}"], "target": "{{a.Iqn}}", "luns": [ { "lun": 1, "nbd": { "socket": "{{dir.File("a1.sock")}}" } } ] }""";
        var nodeA2 = $$"""{ "name": "a", "portals": ["{{a.Portal}}"], "target": "{{a.Iqn}}", "luns": [ { "lun": 1, "nbd": { "socket": "{{dir.File("a1.sock")}}" } }, { "lun": 2, "nbd": { "socket": "{{dir.File("a2.sock")}}" } } ] }""";
        var nodeB = $$"""{ "name": "b", "portals": ["{{b.Portal}}"], "target": "{{b.Iqn}}", "luns": [ { "lun": 1, "nbd": { "socket": "{{dir.File("b1.sock")}}" } } ] }""";
        File.WriteAllText(config, Config(nodeA));
        using var notify = new NotifySocket(dir.File("notify"));
        await using var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });
        await notify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));
        Task<ProcessResult> Ctl(params string[] args) => ExternalProcess.RunAsync(Executables.Iserblockctl, [.. args, "--control-socket", control]);
        Task<ControlSocketResponse> List() => ControlClient.SendAsync(control, new ControlSocketRequest { Command = "list" }, CancellationToken.None);

        var sessionA = Assert.Single(await a.SessionsAsync()).Sid;
        var tsihA = (await List()).Sessions!.Single().Tsih;
        // I/O through node a during every reload: it must never see an error or a new session.
        var a1 = $"nbd+unix:///a-1?socket={dir.File("a1.sock")}";
        await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 1M", a1);

        // SIGHUP: node b added, LUN 2 of a mapped; a's session untouched.
        File.WriteAllText(config, Config(nodeA2 + "," + nodeB));
        daemon.Signal(1);
        await Wait.Until(async () => (await List()).Sessions is { Count: 2 } s && s.All(x => x.State == "logged-in" && x.Luns.All(l => l.State == "up")) && s[0].Luns.Count == 2,
            "both sessions logged in with their LUNs up", TimeSpan.FromSeconds(60));
        Assert.False(daemon.HasExited);
        Assert.Contains("\"export-size\"", await Tools.RunAsync("nbdinfo", "--json", $"nbd+unix:///a-2?socket={dir.File("a2.sock")}"));
        Assert.Contains("\"export-size\"", await Tools.RunAsync("nbdinfo", "--json", $"nbd+unix:///b-1?socket={dir.File("b1.sock")}"));
        Assert.Equal(sessionA, Assert.Single(await a.SessionsAsync()).Sid);
        Assert.Equal(tsihA, (await List()).Sessions!.Single(s => s.Node == "a").Tsih);

        // A broken file: nothing changes, the reason comes back (exit 6, ISCSI_ERR_IDBM) and is logged.
        File.WriteAllText(config, Config(nodeA + """, { "name": "c", "portals": [] }"""));
        var broken = await Ctl("reload");
        Assert.Equal(6, broken.ExitCode);
        Assert.Contains("nodes[1]", broken.StandardError);
        Assert.Contains("nothing was changed", broken.StandardError);
        Assert.Equal(2, (await List()).Sessions!.Count);
        Assert.Single(await b.SessionsAsync());

        // Node b removed and LUN 2 of a unmapped, through iserblockctl; a's session still the same.
        File.WriteAllText(config, Config(nodeA));
        var reload = await Ctl("reload");
        Assert.True(reload.ExitCode == 0, reload.StandardError);
        Assert.Contains("b: removed", reload.StandardOutput);
        Assert.Contains("a LUN 2: unmapped", reload.StandardOutput);
        Assert.Empty(await b.SessionsAsync());
        Assert.False(File.Exists(dir.File("a2.sock")));
        Assert.Equal(sessionA, Assert.Single(await a.SessionsAsync()).Sid);
        Assert.Contains("Reloaded", (await Ctl("reload")).StandardOutput); // no changes: nothing to do
        Assert.Contains("wrote 1048576", await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x5b 0 1M", a1));

        // SIGUSR1 (default action: terminate) stops in order: logged out, sockets removed, exit 0.
        daemon.Signal(10);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Empty(await a.SessionsAsync());
        Assert.False(File.Exists(dir.File("a1.sock")));
        Assert.False(File.Exists(control));
        Assert.Equal(0x5b, File.ReadAllBytes(a.BackingFile(1))[(1 << 20) - 1]);
    }

    [Theory]
    [InlineData(3)]  // SIGQUIT
    [InlineData(12)] // SIGUSR2
    [InlineData(14)] // SIGALRM
    public async Task Terminating_signals_stop_the_daemon_in_order(int signal)
    {
        await using var a = await TestTarget.StartAsync((1, Size, 512));
        using var dir = new TempDirectory("signals");
        var config = dir.File("iserblockd.json");
        File.WriteAllText(config, $$"""
            { "initiatorName": "{{TestTarget.InitiatorName}}", "controlSocket": "{{dir.File("run/control")}}",
              "nodes": [ { "name": "a", "portals": ["{{a.Portal}}"], "target": "{{a.Iqn}}", "luns": [ { "lun": 1, "nbd": { "socket": "{{dir.File("a1.sock")}}" } } ] } ] }
            """);
        using var notify = new NotifySocket(dir.File("notify"));
        await using var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });
        await notify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));
        daemon.Signal(signal);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        await notify.WaitForAsync("STOPPING=1", TimeSpan.FromSeconds(1));
        Assert.Empty(await a.SessionsAsync());
        Assert.False(File.Exists(dir.File("a1.sock")));
    }
}
