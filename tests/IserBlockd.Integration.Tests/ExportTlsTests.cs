using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.Integration.Tests;

/// <summary>
/// <c>iserblockd export --tls-creds</c>: NBD_OPT_STARTTLS with X.509 against libnbd (nbdinfo, nbdcopy) and
/// qemu (a tls-creds-x509 object), with and without client certificates; plain clients refused when TLS
/// is required. The certificates are made here with openssl.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class ExportTlsTests(ITestOutputHelper output)
{
    private const long Size = 32L << 20;

    [Fact]
    public async Task Required_tls_serves_nbdinfo_nbdcopy_and_qemu_and_refuses_plain_clients()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512));
        using var dir = new TempDirectory("tls");
        var pki = await TestPki.CreateAsync(dir);
        await using var export = await ExportProcess.StartAsync(target, 1, "--listen", $"127.0.0.1:{FreePort.Next()}", "--tls-creds", pki.Server);
        Assert.StartsWith("nbds://127.0.0.1:", export.Ready);
        var port = new Uri(export.Ready).Port;
        var uri = $"nbds://127.0.0.1:{port}/?tls-certificates={pki.ClientWithoutCertificate}";

        Assert.Contains($"\"export-size\": {Size}", await Tools.RunAsync("nbdinfo", "--json", uri));
        var source = dir.File("source.bin");
        File.WriteAllBytes(source, Tools.RandomBytes((int)Size));
        await Tools.RunAsync("nbdcopy", source, uri);
        await Tools.RunAsync("nbdcopy", uri, dir.File("back.bin"));
        Assert.True(File.ReadAllBytes(source).AsSpan().SequenceEqual(File.ReadAllBytes(dir.File("back.bin"))), "read back over TLS differs");

        var qemu = await Tools.RunAsync("qemu-io", "--object", $"tls-creds-x509,id=tls0,dir={pki.ClientWithoutCertificate},endpoint=client",
            "--image-opts", $"driver=nbd,host=127.0.0.1,port={port},tls-creds=tls0",
            "-c", "write -P 0x5a 1M 1M", "-c", "read -P 0x5a 1M 1M");
        Assert.DoesNotContain("Pattern verification failed", qemu);
        Assert.Equal(0x5a, await ReadByteAsync(uri, 1 << 20, dir)); // what qemu wrote over TLS, read by libnbd

        var plain = await ExternalProcess.RunAsync("nbdinfo", [$"nbd://127.0.0.1:{port}/"], TimeSpan.FromMinutes(1));
        output.WriteLine(plain.StandardError);
        Assert.NotEqual(0, plain.ExitCode);
        Assert.Contains("server replied with error", plain.StandardError); // NBD_REP_ERR_TLS_REQD, which libnbd calls ENOTSUP
        Assert.Equal(0, await export.StopAsync());
    }

    [Fact]
    public async Task Verify_peer_serves_clients_with_a_certificate_of_the_ca_only()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512));
        using var dir = new TempDirectory("tls-peer");
        var pki = await TestPki.CreateAsync(dir);
        await using var export = await ExportProcess.StartAsync(target, 1, "--listen", $"127.0.0.1:{FreePort.Next()}", "--tls-creds", pki.Server, "--tls-verify-peer");
        var port = new Uri(export.Ready).Port;

        Assert.Contains($"\"export-size\": {Size}", await Tools.RunAsync("nbdinfo", "--json", $"nbds://127.0.0.1:{port}/?tls-certificates={pki.Client}"));
        var qemu = await Tools.RunAsync("qemu-img", "info", "--object", $"tls-creds-x509,id=tls0,dir={pki.Client},endpoint=client",
            "--image-opts", $"driver=nbd,host=127.0.0.1,port={port},tls-creds=tls0");
        Assert.Contains("virtual size: 32 MiB", qemu);

        foreach (var refused in new[] { pki.ClientWithoutCertificate, pki.RogueClient })
        {
            var result = await ExternalProcess.RunAsync("nbdinfo", [$"nbds://127.0.0.1:{port}/?tls-certificates={refused}"], TimeSpan.FromMinutes(1));
            output.WriteLine(result.StandardError);
            Assert.NotEqual(0, result.ExitCode);
        }
        Assert.Contains("not signed by the configured CA", export.Process.StandardError);
        Assert.Equal(0, await export.StopAsync());
    }

    [Fact]
    public async Task Allow_serves_plain_and_tls_clients_and_bad_tls_options_are_refused()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512));
        using var dir = new TempDirectory("tls-allow");
        var pki = await TestPki.CreateAsync(dir);
        await using (var export = await ExportProcess.StartAsync(target, 1, "--listen", $"127.0.0.1:{FreePort.Next()}", "--tls-creds", pki.Server, "--tls", "allow"))
        {
            var port = new Uri(export.Ready).Port;
            Assert.Contains("\"export-size\"", await Tools.RunAsync("nbdinfo", "--json", $"nbd://127.0.0.1:{port}/"));
            Assert.Contains("\"export-size\"", await Tools.RunAsync("nbdinfo", "--json", $"nbds://127.0.0.1:{port}/?tls-certificates={pki.ClientWithoutCertificate}"));
        }
        foreach (var args in new[] { new[] { "--tls", "require" }, ["--tls-creds", dir.File("missing")], ["--tls", "maybe", "--tls-creds", pki.Server] })
        {
            var result = await ExternalProcess.RunAsync(Executables.Iserblockd,
                ["export", "--portal", target.Portal, "--target", target.Iqn, "--lun", "1", "--listen", "127.0.0.1:0", .. args], TimeSpan.FromMinutes(1));
            Assert.Equal(7, result.ExitCode);
            Assert.Contains("--tls", result.StandardError);
        }
    }

    private static async Task<int> ReadByteAsync(string uri, long offset, TempDirectory dir)
    {
        var copy = dir.File("check.bin");
        await Tools.RunAsync("nbdcopy", uri, copy);
        using var f = File.OpenRead(copy);
        f.Position = offset;
        return f.ReadByte();
    }
}
