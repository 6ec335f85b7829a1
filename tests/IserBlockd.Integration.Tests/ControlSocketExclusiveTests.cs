using IserBlockd.Daemon.Control;
using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary>
/// Two <c>iserblockd run</c> on one control socket: the second stops at once with one line (address already in use)
/// and a non-zero exit, before it logs in anywhere, and the first keeps its socket; a socket file left by a daemon
/// killed with SIGKILL is replaced by the next one.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class ControlSocketExclusiveTests
{
    [Fact]
    public async Task Second_daemon_on_a_live_control_socket_fails_and_a_stale_one_is_replaced()
    {
        await using var target = await TestTarget.StartAsync((1, 16L << 20, 512));
        using var dir = new TempDirectory("control-exclusive");
        var control = dir.File("run/control");
        var config = dir.File("iserblockd.json");
        File.WriteAllText(config, $$"""
            { "initiatorName": "{{TestTarget.InitiatorName}}", "controlSocket": "{{control}}",
              "nodes": [ { "name": "a", "portals": ["{{target.Portal}}"], "target": "{{target.Iqn}}",
                           "luns": [ { "lun": 1, "nbd": { "socket": "{{dir.File("a.sock")}}" } } ] } ] }
            """);
        await using var first = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config]);
        await first.WaitForLineAsync(l => l.Contains("Ready:", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        var sid = Assert.Single(await target.SessionsAsync()).Sid;

        var second = await ExternalProcess.RunAsync(Executables.Iserblockd, ["run", "--config", config]);
        Assert.Equal(1, second.ExitCode);
        var lines = second.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal($"iserblockd: cannot start: control socket {control}: address already in use (another iserblockd answers there)", lines[^1]);
        Assert.DoesNotContain("   at ", second.StandardError);         // no stack trace
        Assert.DoesNotContain("starting", second.StandardError);        // stopped before the runtime started
        // The first daemon still owns its socket and its session was not fenced by a second login.
        Assert.True((await ControlClient.SendAsync(control, new ControlSocketRequest { Command = "status" }, CancellationToken.None)).Ok);
        Assert.Equal(sid, Assert.Single(await target.SessionsAsync()).Sid);

        first.Signal(9);
        await first.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(File.Exists(control)); // left behind by SIGKILL
        await using var third = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config]);
        await third.WaitForLineAsync(l => l.Contains("Ready:", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        Assert.True((await ControlClient.SendAsync(control, new ControlSocketRequest { Command = "status" }, CancellationToken.None)).Ok);
        third.Signal(15);
        Assert.Equal(0, await third.WaitForExitAsync(TimeSpan.FromSeconds(90)));
    }
}
