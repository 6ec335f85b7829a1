using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary>
/// <c>iserblockd export</c> run as a non-root user (nobody, through setpriv) without --initiator-name, on a host
/// whose /etc/iscsi/initiatorname.iscsi only root may read (Debian's default, mode 0600): the export generates a
/// per-user name once, keeps it under ~/.local/state/iserblockd, says so in the log, and serves the LUN.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class NonRootExportTests
{
    private const string OpenIscsiFile = "/etc/iscsi/initiatorname.iscsi";

    [Fact]
    public async Task Export_as_nobody_without_initiator_name_uses_a_per_user_name_kept_across_runs()
    {
        if (!File.Exists(OpenIscsiFile) || File.GetUnixFileMode(OpenIscsiFile).HasFlag(UnixFileMode.OtherRead))
            return; // the situation under test needs a system name that others may not read
        await using var target = await TestTarget.StartAsync((1, 16 << 20, 512));
        using var dir = new TempDirectory("nonroot-export");
        File.SetUnixFileMode(dir.Path, (UnixFileMode)Convert.ToInt32("755", 8));
        var home = dir.File("home");
        Directory.CreateDirectory(home);
        var chown = await ExternalProcess.RunAsync("chown", ["nobody:nogroup", home]);
        Assert.Equal(0, chown.ExitCode);
        var stateFile = Path.Combine(home, ".local", "state", "iserblockd", "initiatorname");

        string first;
        await using (var export = await StartAsNobodyAsync(target, home))
        {
            var log = export.StandardError;
            var kept = File.ReadAllText(stateFile);
            first = kept.Split('\n').Single(l => l.StartsWith("InitiatorName=", StringComparison.Ordinal))["InitiatorName=".Length..];
            Assert.Contains($"initiator name {first}", log);
            Assert.Contains($"generated now and kept in {stateFile}", log);
            Assert.Contains($"{OpenIscsiFile} is not readable by this user (uid 65534)", log);
            Assert.Equal(first, Assert.Single(await target.SessionsAsync()).InitiatorName);
            var info = await ExternalProcess.RunAsync("nbdinfo", ["--size", $"nbd+unix:///?socket={Path.Combine(home, "nbd.sock")}"]);
            Assert.Equal((16 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), info.StandardOutput.Trim());
            export.Signal(15);
            Assert.Equal(0, await export.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        await using (var again = await StartAsNobodyAsync(target, home))
        {
            Assert.Contains($"initiator name {first}: kept in {stateFile}", again.StandardError);
            Assert.Equal(first, Assert.Single(await target.SessionsAsync()).InitiatorName);
            again.Signal(15);
            Assert.Equal(0, await again.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }
    }

    private static async Task<ExternalProcess> StartAsNobodyAsync(TestTarget target, string home)
    {
        var process = ExternalProcess.Start("setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "--", Executables.Iserblockd,
             "export", "--portal", target.Portal, "--target", target.Iqn, "--lun", "1", "--socket", Path.Combine(home, "nbd.sock")],
            new Dictionary<string, string> { ["HOME"] = home, ["XDG_STATE_HOME"] = "", ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" });
        try
        {
            await process.WaitForLineAsync(l => l.StartsWith("ready: ", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
            return process;
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }
}
