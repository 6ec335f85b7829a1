using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.Daemon.Configuration;
using IserBlockd.TestSupport;

namespace IserBlockd.Daemon.Tests.Configuration;

/// <summary>The NBD server fields of a LUN mapping: TLS as <c>export</c> takes it, the timeouts and the connection
/// limit; defaults, values, errors naming the field, agreement between mappings of one socket, reload.</summary>
public sealed class NbdServingSettingsTests : IDisposable
{
    private readonly TempDirectory _dir = new("nbd-serving");

    public void Dispose() => _dir.Dispose();

    private static DaemonSettings Parse(string luns) => ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""
        { "nodes": [ { "name": "san1", "portals": ["192.0.2.10"], "target": "iqn.2003-01.org.example:disk1", "luns": [ {{luns}} ] } ] }
        """), "test.json");

    private static List<ConfigError> Errors(string luns) => [.. Assert.Throws<ConfigException>(() => Parse(luns)).Errors];

    /// <summary>A CA and a server certificate in qemu's layout.</summary>
    private string Credentials()
    {
        var directory = _dir.File("creds");
        Directory.CreateDirectory(directory);
        var now = DateTimeOffset.UtcNow;
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=test-ca", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(2));
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var server = request.Create(ca, now.AddDays(-1), now.AddDays(1), [1, 2, 3, 4]);
        File.WriteAllText(Path.Combine(directory, "ca-cert.pem"), ca.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "server-cert.pem"), server.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "server-key.pem"), key.ExportPkcs8PrivateKeyPem());
        return directory;
    }

    [Fact]
    public void Defaults_are_no_tls_16_connections_and_the_servers_timeouts()
    {
        var lun = Parse("""{ "lun": 0, "nbd": { "socket": "/run/a.sock" } }""").Nodes[0].Luns[0];
        Assert.Equal(NbdListenerSettings.Default, lun.Listener);
        Assert.Equal("off", lun.Listener.Tls);
        Assert.Equal(TimeSpan.FromSeconds(10), lun.Listener.HandshakeTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), lun.Listener.SendTimeout);
        Assert.Equal(16, lun.MaxConnections);
        Assert.Null(lun.Listener.LoadTls());
    }

    [Fact]
    public void Tls_creds_mean_require_and_every_field_is_read()
    {
        var creds = Credentials();
        var lun = Parse($$"""{ "lun": 0, "nbd": { "listen": "127.0.0.1:10809", "tlsCreds": "{{creds}}", "tlsVerifyPeer": true, "maxConnections": 4, "handshakeTimeout": 5, "sendTimeout": 7.5 } }""").Nodes[0].Luns[0];
        Assert.Equal(new NbdListenerSettings("require", creds, true, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(7.5)), lun.Listener);
        Assert.Equal(4, lun.MaxConnections);
        var options = lun.Listener.Apply(new NbdServerOptions());
        Assert.True(options.Tls is { Required: true, VerifyPeer: true });
        Assert.Equal(TimeSpan.FromSeconds(7.5), options.SendTimeout);

        var allow = Parse($$"""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "tlsCreds": "{{creds}}", "tls": "allow" } }""").Nodes[0].Luns[0];
        Assert.True(allow.Listener.LoadTls() is { Required: false, VerifyPeer: false });
        var off = Parse($$"""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "tlsCreds": "{{creds}}", "tls": "off" } }""").Nodes[0].Luns[0];
        Assert.Equal(NbdListenerSettings.Default, off.Listener);
    }

    [Fact]
    public void Bad_fields_are_named()
    {
        const string at = "nodes[0].luns[0].nbd.";
        Assert.Contains(Errors("""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "tls": "maybe" } }"""),
            e => e.Path == at + "tls" && e.Message.Contains("expected \"off\", \"allow\" or \"require\""));
        Assert.Contains(Errors("""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "tls": "require" } }"""),
            e => e.Path == at + "tls" && e.Message.Contains("needs the TLS credentials directory"));
        Assert.Contains(Errors("""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "tlsCreds": "creds" } }"""),
            e => e.Path == at + "tlsCreds" && e.Message.Contains("absolute path"));
        Assert.Contains(Errors($$"""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "tlsCreds": "{{_dir.File("missing")}}" } }"""),
            e => e.Path == at + "tlsCreds" && e.Message.Contains("does not exist"));
        Assert.Contains(Errors("""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "tlsVerifyPeer": true } }"""),
            e => e.Path == at + "tlsVerifyPeer");
        Assert.Contains(Errors("""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "maxConnections": 0 } }"""),
            e => e.Path == at + "maxConnections" && e.Message.Contains("expected 1 to 1024"));
        Assert.Contains(Errors("""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "sendTimeout": 0 } }"""), e => e.Path == at + "sendTimeout");
        Assert.Contains(Errors("""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "handshakeTimeout": -1 } }"""), e => e.Path == at + "handshakeTimeout");
        Assert.Contains(Errors("""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "tls": 1 } }"""), e => e.Path == at + "tls");
    }

    [Fact]
    public void Mappings_sharing_a_socket_must_agree_on_the_servers_settings()
    {
        var creds = Credentials();
        var errors = Errors($$"""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "exportName": "x" } }, { "lun": 1, "nbd": { "socket": "/run/a.sock", "exportName": "y", "tlsCreds": "{{creds}}" } }""");
        Assert.Contains(errors, e => e.Path == "nodes[0].luns[1].nbd" && e.Message.Contains("shared with nodes[0].luns[0]"));
        // The connection limit is the export's own.
        Parse("""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "exportName": "x", "maxConnections": 2 } }, { "lun": 1, "nbd": { "socket": "/run/a.sock", "exportName": "y" } }""");
    }

    [Fact]
    public void A_tls_change_is_a_mapping_change_on_reload_and_the_dump_reads_back_the_same()
    {
        var creds = Credentials();
        var plain = Parse("""{ "lun": 0, "nbd": { "socket": "/run/a.sock" } }""");
        var secured = Parse($$"""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "tlsCreds": "{{creds}}" } }""");
        Assert.Equal(["san1"], ConfigDifference.Between(plain, secured).MappingsChanged.Select(n => n.Name));
        Assert.True(ConfigDifference.Between(secured, Parse($$"""{ "lun": 0, "nbd": { "socket": "/run/a.sock", "tlsCreds": "{{creds}}" } }""")).IsEmpty);

        var dumped = ConfigLoader.Parse(Encoding.UTF8.GetBytes(ConfigDump.ToJson(secured)), "dump.json");
        Assert.Equal(secured.Nodes[0].Luns[0], dumped.Nodes[0].Luns[0]);
    }
}
