using System.Text;
using System.Text.Json;
using IserBlockd.Daemon.Control;
using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary>
/// Mutual CHAP against tgtd with everything at the most verbose level: neither secret, nor its hex or base64
/// form, appears in the daemon's log (stderr and log file), the control socket's answers, check-config's output,
/// iserblockctl's and export's error messages, including the failures of a wrong initiator or target secret.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class SecretsStaySecretTests
{
    private const string InitiatorSecret = "Ini-Secret-7f3a9c51";
    private const string TargetSecret = "Tgt-Secret-2b81d4e6";

    [Fact]
    public async Task Neither_chap_secret_leaks_anywhere_at_the_most_verbose_level()
    {
        await using var target = await TestTarget.StartAsync((1, 16L << 20, 512));
        await target.Target.RequireChapAsync("host1", InitiatorSecret);
        await target.Target.SetOutgoingAccountAsync("san1", TargetSecret);
        using var dir = new TempDirectory("secrets");
        string Secret(string name, string value)
        {
            var path = dir.File(name);
            File.WriteAllText(path, value + "\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            return path;
        }
        var initiatorFile = Secret("initiator.secret", InitiatorSecret);
        var targetFile = Secret("target.secret", TargetSecret);
        var wrongFile = Secret("wrong.secret", "Wrong-Secret-0000");
        var control = dir.File("run/control");
        var logFile = dir.File("iserblockd.log");
        var config = dir.File("iserblockd.json");
        File.WriteAllText(config, $$"""
            { "initiatorName": "{{TestTarget.InitiatorName}}", "controlSocket": "{{control}}",
              "logging": { "level": "verbose", "file": "{{logFile}}" },
              "nodes": [ { "name": "a", "portals": ["{{target.Portal}}"], "target": "{{target.Iqn}}",
                           "chap": { "user": "host1", "secretFile": "{{initiatorFile}}", "targetUser": "san1", "targetSecretFile": "{{targetFile}}" },
                           "luns": [ { "lun": 1, "nbd": { "socket": "{{dir.File("a.sock")}}" } } ] } ] }
            """);
        var seen = new StringBuilder();

        var check = await ExternalProcess.RunAsync(Executables.Iserblockd, ["check-config", "--config", config]);
        Assert.Equal(0, check.ExitCode);
        seen.AppendLine(check.StandardOutput).AppendLine(check.StandardError);

        await using (var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config]))
        {
            await daemon.WaitForLineAsync(l => l.Contains("Ready:", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
            Assert.Contains("(mutual)", daemon.StandardError); // mutual CHAP really ran, and verbose logging with it
            var info = await ExternalProcess.RunAsync("nbdinfo", [$"nbd+unix:///a-1?socket={dir.File("a.sock")}"]);
            Assert.Equal(0, info.ExitCode);
            foreach (var request in new[] { new ControlSocketRequest { Command = "list" }, new ControlSocketRequest { Command = "status" },
                                            new ControlSocketRequest { Command = "show", Node = "a" }, new ControlSocketRequest { Command = "luns", Node = "a" } })
            {
                var response = await ControlClient.SendAsync(control, request, CancellationToken.None);
                Assert.True(response.Ok, response.Error?.Message);
                seen.AppendLine(JsonSerializer.Serialize(response, ControlJsonContext.Readable.ControlSocketResponse));
            }
            var show = await ExternalProcess.RunAsync(Executables.Iserblockctl, ["show", "a", "--control-socket", control, "-o", "json"]);
            seen.AppendLine(show.StandardOutput).AppendLine(show.StandardError);
            daemon.Signal(15);
            Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(90)));
            seen.AppendLine(daemon.StandardOutput).AppendLine(daemon.StandardError);
        }
        seen.AppendLine(File.ReadAllText(logFile));

        // Wrong secrets: ours (the target refuses us) and the target's (we refuse it), verbose, from iserblockctl and export.
        string[] inquiry = ["inquiry", "-p", target.Portal, "-T", target.Iqn, "-l", "1", "-I", TestTarget.InitiatorName, "--verbose", "--chap-user", "host1"];
        var wrongOurs = await ExternalProcess.RunAsync(Executables.Iserblockctl, [.. inquiry, "--chap-secret-file", wrongFile]);
        Assert.Equal(24, wrongOurs.ExitCode);
        var wrongTheirs = await ExternalProcess.RunAsync(Executables.Iserblockctl,
            [.. inquiry, "--chap-secret-file", initiatorFile, "--target-user", "san1", "--target-secret-file", wrongFile]);
        Assert.Equal(24, wrongTheirs.ExitCode);
        Assert.Contains("target secret mismatch", wrongTheirs.StandardError);
        var export = await ExternalProcess.RunAsync(Executables.Iserblockd,
            ["export", "-p", target.Portal, "-T", target.Iqn, "-l", "1", "-I", TestTarget.InitiatorName, "--log-level", "verbose",
             "--socket", dir.File("x.sock"), "--chap-user", "host1", "--chap-secret-file", initiatorFile,
             "--target-user", "san1", "--target-secret-file", wrongFile]);
        Assert.NotEqual(0, export.ExitCode);
        foreach (var r in new[] { wrongOurs, wrongTheirs, export })
            seen.AppendLine(r.StandardOutput).AppendLine(r.StandardError);

        var text = seen.ToString();
        foreach (var secret in new[] { InitiatorSecret, TargetSecret, "Wrong-Secret-0000" })
        {
            var bytes = Encoding.UTF8.GetBytes(secret);
            foreach (var form in new[] { secret, Convert.ToHexStringLower(bytes), Convert.ToHexString(bytes), Convert.ToBase64String(bytes), Convert.ToBase64String(bytes).TrimEnd('=') })
                Assert.False(text.Contains(form, StringComparison.Ordinal), $"'{form}' (a form of a CHAP secret) appears in the output");
        }
        Assert.Contains("san1", text); // the output was collected: user names are not secret
    }
}
