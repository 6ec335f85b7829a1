using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.Integration.Tests;

/// <summary>TLS per mapping in the daemon's configuration, as <c>export --tls-creds</c> takes it: nbdinfo and nbdcopy
/// over <c>nbds://</c>, plain clients refused, bad TLS fields stopping startup with exit code 78 naming the field.</summary>
[Trait("Category", "RealPeer")]
public sealed class DaemonTlsTests(ITestOutputHelper output)
{
    private const long Size = 32L << 20;

    [Fact]
    public async Task A_mapping_that_requires_tls_serves_nbds_clients_and_refuses_plain_ones()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512), (2, Size, 512));
        using var dir = new TempDirectory("daemon-tls");
        var pki = await TestPki.CreateAsync(dir);
        int port = FreePort.Next(), plainPort = FreePort.Next();
        var config = dir.File("iserblockd.json");
        File.WriteAllText(config, $$"""
            { "initiatorName": "{{TestTarget.InitiatorName}}", "controlSocket": "{{dir.File("run/control")}}",
              "nodes": [ { "name": "a", "portals": ["{{target.Portal}}"], "target": "{{target.Iqn}}", "transport": "tcp",
                           "luns": [ { "lun": 1, "nbd": { "listen": "127.0.0.1:{{port}}", "exportName": "secure",
                                                          "tlsCreds": "{{pki.Server}}", "tlsVerifyPeer": true } },
                                     { "lun": 2, "nbd": { "listen": "127.0.0.1:{{plainPort}}", "exportName": "plain" } } ] } ] }
            """);
        using var notify = new NotifySocket(dir.File("notify"));
        await using var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });
        await notify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));
        Assert.Contains($"exported as nbds://127.0.0.1:{port}/secure", daemon.StandardError + daemon.StandardOutput);

        var uri = $"nbds://127.0.0.1:{port}/secure?tls-certificates={pki.Client}";
        Assert.Contains($"\"export-size\": {Size}", await Tools.RunAsync("nbdinfo", "--json", uri));
        var source = dir.File("source.bin");
        File.WriteAllBytes(source, Tools.RandomBytes((int)Size));
        await Tools.RunAsync("nbdcopy", source, uri);
        await Tools.RunAsync("nbdcopy", uri, dir.File("back.bin"));
        Assert.True(File.ReadAllBytes(source).AsSpan().SequenceEqual(File.ReadAllBytes(dir.File("back.bin"))), "read back over TLS differs");

        var plain = await ExternalProcess.RunAsync("nbdinfo", [$"nbd://127.0.0.1:{port}/secure"], TimeSpan.FromMinutes(1));
        output.WriteLine(plain.StandardError);
        Assert.NotEqual(0, plain.ExitCode);
        Assert.Contains("server replied with error", plain.StandardError); // NBD_REP_ERR_TLS_REQD
        var noCertificate = await ExternalProcess.RunAsync("nbdinfo", [$"nbds://127.0.0.1:{port}/secure?tls-certificates={pki.ClientWithoutCertificate}"], TimeSpan.FromMinutes(1));
        Assert.NotEqual(0, noCertificate.ExitCode);
        // The other mapping of the same node stays in the clear.
        Assert.Contains($"\"export-size\": {Size}", await Tools.RunAsync("nbdinfo", "--json", $"nbd://127.0.0.1:{plainPort}/plain"));

        daemon.Signal(15);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.True(File.ReadAllBytes(source).AsSpan().SequenceEqual(File.ReadAllBytes(target.BackingFile(1))), "the LUN differs from what was written");
    }

    [Fact]
    public async Task Bad_tls_fields_stop_startup_with_exit_code_78_naming_them()
    {
        using var dir = new TempDirectory("daemon-tls-bad");
        var config = dir.File("bad.json");
        File.WriteAllText(config, $$"""
            { "initiatorName": "iqn.2024-01.org.example:host",
              "nodes": [ { "name": "a", "portals": ["127.0.0.1"], "target": "iqn.2024-01.org.example:a",
                           "luns": [ { "lun": 1, "nbd": { "socket": "{{dir.File("a.sock")}}", "tlsCreds": "{{dir.File("missing")}}" } },
                                     { "lun": 2, "nbd": { "socket": "{{dir.File("b.sock")}}", "tls": "maybe" } },
                                     { "lun": 3, "nbd": { "socket": "{{dir.File("c.sock")}}", "tlsVerifyPeer": true } } ] } ] }
            """);
        foreach (var command in new[] { "run", "check-config" })
        {
            var result = await ExternalProcess.RunAsync(Executables.Iserblockd, [command, "--config", config]);
            output.WriteLine(result.StandardError);
            Assert.Equal(78, result.ExitCode);
            Assert.Contains("nodes[0].luns[0].nbd.tlsCreds: TLS credentials:", result.StandardError);
            Assert.Contains("nodes[0].luns[1].nbd.tls: expected \"off\", \"allow\" or \"require\", got \"maybe\"", result.StandardError);
            Assert.Contains("nodes[0].luns[2].nbd.tlsVerifyPeer: needs TLS", result.StandardError);
        }
    }
}
