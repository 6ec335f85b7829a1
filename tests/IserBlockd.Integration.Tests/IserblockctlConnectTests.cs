using System.Text.Json;
using IserBlockd.TestSupport;
using IserBlockd.TestSupport.Tgtd;
using Xunit.Abstractions;

namespace IserBlockd.Integration.Tests;

#pragma warning disable CA1416 // Linux-only tests (tgtd, file modes)

/// <summary>The real iserblockctl executable against tgtd: output formats and exit codes.</summary>
[Trait("Category", "RealPeer")]
public sealed class IserblockctlConnectTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Initiator = "iqn.2026-11.io.iserblockd.test:initiator";
    private TgtdServer _tgtd = null!;
    private TgtdTarget _disk = null!;
    private TgtdTarget _secure = null!;
    private readonly TempDirectory _files = new("cli");

    public async Task InitializeAsync()
    {
        _tgtd = await TgtdServer.StartAsync();
        _disk = await _tgtd.CreateTargetAsync("iqn.2026-11.io.iserblockd.test:cli-disk");
        await _disk.AddLunAsync(1, 48 << 20, blockSize: 4096);
        await _disk.SetLunParametersAsync(1, "vendor_id=ISERTEST,product_id=CLI-DISK,product_rev=0042");
        await _disk.BindAsync();
        _secure = await _tgtd.CreateTargetAsync("iqn.2026-11.io.iserblockd.test:cli-secure");
        await _secure.AddLunAsync(1, 8 << 20);
        await _secure.BindAsync();
        await _secure.RequireChapAsync("cli-user", "cli-secret-123");
    }

    public async Task DisposeAsync()
    {
        await _tgtd.DisposeAsync();
        _files.Dispose();
    }

    private async Task<ProcessResult> Run(params string[] args)
    {
        var result = await ExternalProcess.RunAsync(Executables.Iserblockctl, args, TimeSpan.FromSeconds(60));
        output.WriteLine($"$ iserblockctl {string.Join(' ', args)}\n[exit {result.ExitCode}]\n{result.StandardOutput}{result.StandardError}");
        return result;
    }

    private string SecretFile(string name, string secret, UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite)
    {
        var path = _files.File(name);
        File.WriteAllText(path, secret);
        File.SetUnixFileMode(path, mode);
        return path;
    }

    [Fact]
    public async Task Discover_prints_one_line_per_target_portal()
    {
        var result = await Run("discover", _tgtd.Portal, "--initiator-name", Initiator, "--transport", "tcp");
        Assert.Equal(0, result.ExitCode);
        var lines = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().ToArray();
        Assert.Equal(new[]
        {
            $"127.0.0.1:{_tgtd.Port},1 {_disk.Name}",
            $"127.0.0.1:{_tgtd.Port},1 {_secure.Name}",
        }, lines);
        Assert.Equal("", result.StandardError);
    }

    [Fact]
    public async Task Discover_as_json()
    {
        var result = await Run("discover", _tgtd.Portal, "-I", Initiator, "-o", "json");
        Assert.Equal(0, result.ExitCode);
        using var json = JsonDocument.Parse(result.StandardOutput);
        var targets = json.RootElement.EnumerateArray().ToDictionary(t => t.GetProperty("target").GetString()!);
        Assert.Equal(2, targets.Count);
        var portal = Assert.Single(targets[_disk.Name].GetProperty("portals").EnumerateArray());
        Assert.Equal("127.0.0.1", portal.GetProperty("address").GetString());
        Assert.Equal(_tgtd.Port, portal.GetProperty("port").GetInt32());
        Assert.Equal(1, portal.GetProperty("tpgt").GetInt32());
    }

    [Fact]
    public async Task Inquiry_prints_identity_capacity_and_block_size()
    {
        var result = await Run("inquiry", "--portal", _tgtd.Portal, "--target", _disk.Name, "--lun", "1", "--initiator-name", Initiator);
        Assert.Equal(0, result.ExitCode);
        var fields = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(':', 2)).ToLookup(p => p[0].Trim(), p => p[1].Trim());
        Assert.Equal("ISERTEST", fields["Vendor"].Single());
        Assert.Equal("CLI-DISK", fields["Product"].Single());
        Assert.Equal("0042", fields["Revision"].Single());
        Assert.Equal($"{48 << 20} bytes", fields["Capacity"].Single());
        Assert.Equal("4096", fields["Logical block size"].Single());
        Assert.Empty(await _disk.ListSessionsAsync()); // logged out before exiting
    }

    [Fact]
    public async Task Inquiry_as_json()
    {
        var result = await Run("inquiry", "-p", _tgtd.Portal, "-T", _disk.Name, "-l", "1", "-I", Initiator, "-o", "json");
        Assert.Equal(0, result.ExitCode);
        using var json = JsonDocument.Parse(result.StandardOutput);
        var r = json.RootElement;
        Assert.Equal("ISERTEST", r.GetProperty("vendor").GetString());
        Assert.Equal("CLI-DISK", r.GetProperty("product").GetString());
        Assert.Equal((ulong)(48 << 20), r.GetProperty("capacityBytes").GetUInt64());
        Assert.Equal(4096u, r.GetProperty("logicalBlockSize").GetUInt32());
        Assert.Equal("tcp", r.GetProperty("transport").GetString());
    }

    [Fact]
    public async Task Inquiry_with_chap_from_a_secret_file()
    {
        var secret = SecretFile("ok.secret", "cli-secret-123\n");
        var result = await Run("inquiry", "-p", _tgtd.Portal, "-T", _secure.Name, "-l", "1", "-I", Initiator,
            "--chap-user", "cli-user", "--chap-secret-file", secret);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"Capacity:", result.StandardOutput);
    }

    [Fact]
    public async Task Chap_algorithm_lists_reach_tgtd_as_offered()
    {
        var secret = SecretFile("alg.secret", "cli-secret-123\n");
        string[] login = ["inquiry", "-p", _tgtd.Portal, "-T", _secure.Name, "-l", "1", "-I", Initiator, "--chap-user", "cli-user", "--chap-secret-file", secret];
        // tgtd knows MD5, and SHA-1 which it numbers 7: the strongest-first list falls back to MD5 by itself.
        var md5 = await Run([.. login, "--chap-algorithms", "MD5"]);
        Assert.Equal(0, md5.ExitCode);
        var all = await Run([.. login, "--chap-algorithms", "SHA3-256,SHA256,SHA1,MD5", "--verbose"]);
        Assert.Equal(0, all.ExitCode);
        Assert.Contains("refused a SHA-256 response", all.StandardError);
        // SHA-256 alone is never authenticated with tgtd's SHA-1: an authentication failure, exit 24.
        var sha256 = await Run([.. login, "--chap-algorithms", "SHA256"]);
        Assert.Equal(24, sha256.ExitCode);
        Assert.Contains("tgt computes SHA-1 for 7", sha256.StandardError);
        var bad = await Run([.. login, "--chap-algorithms", "SHA512"]);
        Assert.Equal(7, bad.ExitCode);
        Assert.Contains("unknown CHAP algorithm 'SHA512'", bad.StandardError);
    }

    [Fact]
    public async Task Wrong_chap_secret_exits_24()
    {
        var secret = SecretFile("wrong.secret", "not-the-secret");
        var result = await Run("inquiry", "-p", _tgtd.Portal, "-T", _secure.Name, "-I", Initiator,
            "--chap-user", "cli-user", "--chap-secret-file", secret);
        Assert.Equal(24, result.ExitCode);
        Assert.Single(result.StandardError.Trim().Split('\n'));
        Assert.Contains("authentication failure", result.StandardError);
        Assert.DoesNotContain("not-the-secret", result.StandardError + result.StandardOutput);
    }

    [Fact]
    public async Task Secret_file_readable_by_others_is_refused()
    {
        var secret = SecretFile("open.secret", "cli-secret-123", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var result = await Run("inquiry", "-p", _tgtd.Portal, "-T", _secure.Name, "-I", Initiator,
            "--chap-user", "cli-user", "--chap-secret-file", secret);
        Assert.Equal(7, result.ExitCode);
        Assert.Contains("0644", result.StandardError);
        Assert.Contains("0600", result.StandardError);
    }

    [Fact]
    public async Task Unknown_target_exits_21()
    {
        var result = await Run("inquiry", "-p", _tgtd.Portal, "-T", "iqn.2026-11.io.iserblockd.test:absent", "-I", Initiator);
        Assert.Equal(21, result.ExitCode);
        Assert.Single(result.StandardError.Trim().Split('\n'));
        Assert.Contains("target not found", result.StandardError);
        Assert.Equal("", result.StandardOutput);
    }

    [Fact]
    public async Task Missing_lun_exits_21()
    {
        var result = await Run("inquiry", "-p", _tgtd.Portal, "-T", _disk.Name, "-l", "9", "-I", Initiator);
        Assert.Equal(21, result.ExitCode);
        Assert.Contains("LUN 9", result.StandardError);
    }

    [Fact]
    public async Task Connection_refused_exits_4()
    {
        var result = await Run("inquiry", "-p", $"127.0.0.1:{FreePort.Next()}", "-T", _disk.Name, "-I", Initiator, "--transport", "tcp");
        Assert.Equal(4, result.ExitCode);
        Assert.Contains("connection refused", result.StandardError);
    }

    [Fact]
    public async Task Iser_without_rdma_fails_with_a_clear_reason()
    {
        var result = await Run("discover", _tgtd.Portal, "-I", Initiator, "--transport", "iser");
        if (result.ExitCode == 0) return; // a host with an RDMA device and an iSER-capable path
        Assert.Contains("iSER", result.StandardError, StringComparison.OrdinalIgnoreCase);
        Assert.Single(result.StandardError.Trim().Split('\n'));
    }

    [Fact]
    public async Task Usage_errors_exit_7()
    {
        var noTarget = await Run("inquiry", "-p", _tgtd.Portal);
        Assert.Equal(7, noTarget.ExitCode);
        Assert.Contains("--target", noTarget.StandardError);
        var badLun = await Run("inquiry", "-p", _tgtd.Portal, "-T", _disk.Name, "-l", "x", "-I", Initiator);
        Assert.Equal(7, badLun.ExitCode);
        var badPortal = await Run("discover", "[::1", "-I", Initiator);
        Assert.Equal(7, badPortal.ExitCode);
        var badTransport = await Run("discover", _tgtd.Portal, "--transport", "carrier-pigeon");
        Assert.Equal(7, badTransport.ExitCode);
    }
}
