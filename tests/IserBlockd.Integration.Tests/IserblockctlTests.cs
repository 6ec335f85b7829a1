using System.Text.Json;
using IserBlockd.Daemon.Control;
using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary>The real iserblockctl against a running daemon: tables, -o json, one-line errors, iscsiadm exit codes.</summary>
[Trait("Category", "RealPeer")]
public sealed class IserblockctlTests
{
    private const long Size = 16L << 20;

    [Fact]
    public async Task List_status_map_unmap_logout_login_through_iserblockctl()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512), (2, Size, 4096));
        using var dir = new TempDirectory("ctl");
        var control = dir.File("run/control");
        var config = dir.File("iserblockd.json");
        File.WriteAllText(config, $$"""
            { "initiatorName": "{{TestTarget.InitiatorName}}", "controlSocket": "{{control}}",
              "nodes": [ { "name": "san", "portals": ["{{target.Portal}}"], "target": "{{target.Iqn}}",
                           "luns": [ { "lun": 1, "nbd": { "socket": "{{dir.File("one.sock")}}" } } ] } ] }
            """);
        using var notify = new NotifySocket(dir.File("notify"));
        await using var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });
        await notify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));
        Task<ProcessResult> Ctl(params string[] args) => ExternalProcess.RunAsync(Executables.Iserblockctl, [.. args, "--control-socket", control]);

        await Tools.RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x33 0 1M", $"nbd+unix:///san-1?socket={dir.File("one.sock")}");

        var status = await Ctl("status");
        Assert.Equal(0, status.ExitCode);
        Assert.Contains("sessions   1/1 logged in", status.StandardOutput);
        Assert.Contains($"initiator  {TestTarget.InitiatorName}", status.StandardOutput);

        var list = await Ctl("list");
        Assert.Equal(0, list.ExitCode);
        var lines = list.StandardOutput.Split('\n');
        Assert.StartsWith("NODE", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("san ", StringComparison.Ordinal) && l.Contains(target.Iqn) && l.Contains("logged-in") && l.Contains("tcp"));
        Assert.Contains(lines, l => l.StartsWith("san ", StringComparison.Ordinal) && l.Contains(" up ") && l.Contains("16 MiB") && l.Contains("1 MiB") && l.Contains("san-1"));

        var json = await Ctl("list", "-o", "json");
        Assert.Equal(0, json.ExitCode);
        var sessions = JsonSerializer.Deserialize(json.StandardOutput, ControlOutputJsonContext.Default.ListSessionInfo)!;
        var lun1 = Assert.Single(Assert.Single(sessions).Luns);
        Assert.Equal(1 << 20, lun1.Counters.BytesWritten);
        Assert.Equal($"nbd+unix:///san-1?socket={dir.File("one.sock")}", Assert.Single(lun1.Exports)); // '+' not escaped

        var map = await Ctl("map", "san", "2", "--socket", dir.File("two.sock"), "--export-name", "two", "--read-only");
        Assert.True(map.ExitCode == 0, map.StandardError);
        Assert.Contains($"Mapped LUN 2 of san: nbd+unix:///two?socket={dir.File("two.sock")}", map.StandardOutput);
        Assert.Contains("\"block_size_minimum\": 4096", await Tools.RunAsync("nbdinfo", "--json", $"nbd+unix:///two?socket={dir.File("two.sock")}"));
        Assert.Contains("\"is_read_only\": true", await Tools.RunAsync("nbdinfo", "--json", $"nbd+unix:///two?socket={dir.File("two.sock")}"));

        var again = await Ctl("map", "san", "2", "--socket", dir.File("three.sock"));
        Assert.Equal(15, again.ExitCode); // ISCSI_ERR_SESS_EXISTS
        Assert.Equal("iserblockctl map: LUN 2 of san is already mapped", again.StandardError.Trim());

        var badDevice = await Ctl("map", "san", "3", "--device", "/dev/sda");
        Assert.Equal(7, badDevice.ExitCode); // ISCSI_ERR_INVAL
        Assert.Contains("expected \"/dev/nbdN\", \"auto\", \"ublk\" or \"/dev/ublkbN\"", badDevice.StandardError);

        Assert.Equal(0, (await Ctl("unmap", "san", "2")).ExitCode);
        var unmapped = await Ctl("unmap", "san", "2");
        Assert.Equal(21, unmapped.ExitCode); // ISCSI_ERR_NO_OBJS_FOUND
        Assert.Equal(21, (await Ctl("logout", "nosuchnode")).ExitCode);

        var logout = await Ctl("logout", "san", "-o", "json");
        Assert.Equal(0, logout.ExitCode);
        Assert.Contains("\"ok\": true", logout.StandardOutput);
        Assert.Empty(await target.SessionsAsync());
        Assert.Equal(15, (await Ctl("logout", "san")).ExitCode);
        Assert.Equal(0, (await Ctl("login", "san")).ExitCode);
        Assert.Single(await target.SessionsAsync());
        Assert.Equal(15, (await Ctl("login", "san")).ExitCode);

        daemon.Signal(15);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var notRunning = await Ctl("status");
        Assert.Equal(20, notRunning.ExitCode); // ISCSI_ERR_ISCSID_NOTCONN
        Assert.StartsWith("iserblockctl status: iserblockd is not running", notRunning.StandardError);
    }
}
