using IserBlockd.Daemon.Control;
using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary><c>iserblockd run</c> from a configuration file, as systemd runs it (NOTIFY_SOCKET, WATCHDOG_USEC).</summary>
[Trait("Category", "RealPeer")]
public sealed class DaemonTests
{
    private const long Size = 32L << 20;

    [Fact]
    public async Task Several_luns_on_two_targets_are_each_usable_and_ready_comes_after_them()
    {
        await using var a = await TestTarget.StartAsync((1, Size, 512), (2, Size, 4096));
        await using var b = await TestTarget.StartAsync((3, Size, 512));
        using var dir = new TempDirectory("daemon");
        var port = FreePort.Next();
        var socket = dir.File("a.sock");
        var config = dir.File("iserblockd.json");
        File.WriteAllText(config, $$"""
            {
              "initiatorName": "{{TestTarget.InitiatorName}}",
              "controlSocket": "{{dir.File("run/control")}}",
              "nopInterval": 1, "nopTimeout": 2,
              "nodes": [
                { "name": "a", "portals": ["{{a.Portal}}"], "target": "{{a.Iqn}}", "transport": "tcp",
                  "luns": [ { "lun": 1, "nbd": { "socket": "{{socket}}" } },
                            { "lun": 2, "nbd": { "socket": "{{socket}}", "exportName": "big-blocks" } } ] },
                { "name": "b", "portals": ["127.0.0.1:{{FreePort.Next()}}", "{{b.Portal}}"], "target": "{{b.Iqn}}",
                  "luns": [ { "lun": 3, "nbd": { "listen": "127.0.0.1:{{port}}", "exportName": "b3" } } ] }
              ]
            }
            """);
        using var notify = new NotifySocket(dir.File("notify"));
        await using var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path, ["WATCHDOG_USEC"] = "1000000" });

        await notify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));
        var uris = new[] { $"nbd+unix:///a-1?socket={socket}", $"nbd+unix:///big-blocks?socket={socket}", $"nbd://127.0.0.1:{port}/b3" };
        // READY=1 means the mappings are up: every export answers at once, without waiting.
        foreach (var uri in uris)
            Assert.Contains($"\"export-size\": {Size}", await Tools.RunAsync("nbdinfo", "--json", uri));
        Assert.Contains("\"block_size_minimum\": 4096", await Tools.RunAsync("nbdinfo", "--json", uris[1]));
        var status = notify.Messages.First(m => m.Message.Contains("READY=1")).Message;
        Assert.Contains("STATUS=2/2 node(s) logged in, 3 LUN(s) mapped", status);

        var sources = new List<string>();
        foreach (var (uri, i) in uris.Select((u, i) => (u, i)))
        {
            var source = dir.File($"source{i}.bin");
            File.WriteAllBytes(source, Tools.RandomBytes((int)Size));
            await Tools.RunAsync("nbdcopy", source, uri);
            await Tools.RunAsync("nbdcopy", uri, dir.File($"back{i}.bin"));
            Assert.True(File.ReadAllBytes(source).AsSpan().SequenceEqual(File.ReadAllBytes(dir.File($"back{i}.bin"))), $"{uri} read back differs");
            sources.Add(source);
        }

        var list = await ControlClient.SendAsync(dir.File("run/control"), new ControlSocketRequest { Command = "list" }, CancellationToken.None);
        Assert.True(list.Ok, list.Error?.Message);
        Assert.Equal(["a", "b"], list.Sessions!.Select(s => s.Node));
        Assert.All(list.Sessions!, s => Assert.Equal("logged-in", s.State));
        var lun1 = list.Sessions![0].Luns.Single(l => l.Lun == 1);
        Assert.Equal(Size, lun1.Counters.BytesWritten);
        Assert.True(lun1.Counters.BytesRead >= Size);
        Assert.Equal(0, lun1.Counters.Errors);
        Assert.Equal(b.Portal, list.Sessions[1].Portal); // the first portal of b refuses; the second was used

        // watchdog pings come at half of WATCHDOG_USEC
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.True(notify.Messages.Count(m => m.Message == "WATCHDOG=1") >= 2, string.Join(" | ", notify.Messages.Select(m => m.Message)));

        daemon.Signal(15);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        await notify.WaitForAsync("STOPPING=1", TimeSpan.FromSeconds(1));
        Assert.Empty(await a.SessionsAsync());
        Assert.Empty(await b.SessionsAsync());
        Assert.False(File.Exists(socket));
        Assert.False(File.Exists(dir.File("run/control")));
        var backing = new[] { a.BackingFile(1), a.BackingFile(2), b.BackingFile(3) };
        for (var i = 0; i < 3; i++)
            Assert.True(File.ReadAllBytes(sources[i]).AsSpan().SequenceEqual(File.ReadAllBytes(backing[i])), $"backing file {i} differs");
    }

    [Fact]
    public async Task A_bad_configuration_stops_startup_with_exit_code_78_naming_the_field()
    {
        using var dir = new TempDirectory("daemon");
        var config = dir.File("bad.json");
        File.WriteAllText(config, """
            { "initiatorName": "iqn.2024-01.org.example:host",
              "nodes": [ { "name": "a", "portals": ["127.0.0.1"], "target": "iqn.2024-01.org.example:a",
                           "luns": [ { "lun": 1, "device": "/dev/sdb" }, { "lun": 2, "nbd": { "socket": "x.sock" } } ] } ] }
            """);
        var result = await ExternalProcess.RunAsync(Executables.Iserblockd, ["run", "--config", config]);
        Assert.Equal(78, result.ExitCode);
        Assert.Contains("nodes[0].luns[0].device: expected \"/dev/nbdN\", \"auto\", \"ublk\" or \"/dev/ublkbN\", got \"/dev/sdb\"", result.StandardError);
        Assert.Contains("nodes[0].luns[1].nbd.socket: expected an absolute path, got \"x.sock\"", result.StandardError);

        File.WriteAllText(config, """{ "nodes": [ { "name": "a", "portal": ["127.0.0.1"] } ] }""");
        var unknown = await ExternalProcess.RunAsync(Executables.Iserblockd, ["run", "--config", config]);
        Assert.Equal(78, unknown.ExitCode);
        Assert.Contains("nodes[0].portal: unknown field", unknown.StandardError);

        var missing = await ExternalProcess.RunAsync(Executables.Iserblockd, ["run", "--config", dir.File("none.json")]);
        Assert.Equal(78, missing.ExitCode);
        Assert.Contains("cannot read the configuration file", missing.StandardError);

        var check = await ExternalProcess.RunAsync(Executables.Iserblockd, ["check-config", "--config", config]);
        Assert.Equal(78, check.ExitCode);
    }

    [Fact]
    public async Task Control_socket_logout_login_unmap_map_on_a_running_daemon()
    {
        await using var a = await TestTarget.StartAsync((1, Size, 512), (2, Size, 512));
        using var dir = new TempDirectory("daemon");
        var control = dir.File("run/control");
        var config = dir.File("iserblockd.json");
        File.WriteAllText(config, $$"""
            { "initiatorName": "{{TestTarget.InitiatorName}}", "controlSocket": "{{control}}",
              "nodes": [ { "name": "a", "portals": ["{{a.Portal}}"], "target": "{{a.Iqn}}",
                           "luns": [ { "lun": 1, "nbd": { "socket": "{{dir.File("a1.sock")}}" } } ] } ] }
            """);
        using var notify = new NotifySocket(dir.File("notify"));
        await using var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });
        await notify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));
        Task<ControlSocketResponse> Send(ControlSocketRequest r) => ControlClient.SendAsync(control, r, CancellationToken.None);

        var status = (await Send(new ControlSocketRequest { Command = "status" })).Status!;
        Assert.Equal(1, status.SessionsLoggedIn);
        Assert.Equal(1, status.LunsMapped);
        Assert.Equal(TestTarget.InitiatorName, status.InitiatorName);

        var map = await Send(new ControlSocketRequest { Command = "map", Node = "a", Lun = 2, Socket = dir.File("a2.sock"), ExportName = "two" });
        Assert.True(map.Ok, map.Error?.Message);
        await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x42 0 8192", $"nbd+unix:///two?socket={dir.File("a2.sock")}");
        var again = await Send(new ControlSocketRequest { Command = "map", Node = "a", Lun = 2, Socket = dir.File("a3.sock") });
        Assert.Equal(ControlErrorCodes.AlreadyDone, again.Error!.Code);

        var unmap = await Send(new ControlSocketRequest { Command = "unmap", Node = "a", Lun = 2 });
        Assert.True(unmap.Ok, unmap.Error?.Message);
        Assert.False(File.Exists(dir.File("a2.sock")));
        Assert.Equal(0x42, File.ReadAllBytes(a.BackingFile(2))[8191]); // flushed before the unmap answered

        Assert.Equal(ControlErrorCodes.NotFound, (await Send(new ControlSocketRequest { Command = "logout", Node = "zz" })).Error!.Code);
        var logout = await Send(new ControlSocketRequest { Command = "logout", Node = "a" });
        Assert.True(logout.Ok, logout.Error?.Message);
        Assert.Empty(await a.SessionsAsync());
        Assert.Equal("logged-out", (await Send(new ControlSocketRequest { Command = "list" })).Sessions![0].State);
        Assert.Equal(ControlErrorCodes.AlreadyDone, (await Send(new ControlSocketRequest { Command = "logout", Node = "a" })).Error!.Code);

        var login = await Send(new ControlSocketRequest { Command = "login", Node = "a" });
        Assert.True(login.Ok, login.Error?.Message);
        Assert.Single(await a.SessionsAsync());
        Assert.Contains("\"export-size\"", await Tools.RunAsync("nbdinfo", "--json", $"nbd+unix:///a-1?socket={dir.File("a1.sock")}"));

        daemon.Signal(15);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Empty(await a.SessionsAsync());
    }
}
