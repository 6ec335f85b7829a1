using System.Text;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Transport.Selection;
using IserBlockd.Iscsi.Security;
using Serilog.Events;

namespace IserBlockd.Daemon.Tests.Configuration;

public sealed class ConfigLoaderTests : IDisposable
{
    private readonly TestSupport.TempDirectory _dir = new("iserblockd-config");

    public void Dispose() => _dir.Dispose();

    private static DaemonSettings Parse(string json) => ConfigLoader.Parse(Encoding.UTF8.GetBytes(json), "test.json");

    private static IReadOnlyList<ConfigError> Errors(string json) =>
        Assert.Throws<ConfigException>(() => Parse(json)).Errors;

    private string Secret(string name, string content, UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite)
    {
        var path = _dir.File(name);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, mode);
        return path;
    }

    [Fact]
    public void Minimal_config_gets_every_default()
    {
        var settings = Parse("""
            { "nodes": [ { "name": "san1", "portals": ["192.0.2.10"], "target": "iqn.2003-01.org.example:disk1",
                           "luns": [ { "lun": 0, "device": "auto" } ] } ] }
            """);

        Assert.Null(settings.InitiatorName);
        Assert.Equal(TimeSpan.FromSeconds(120), settings.ReplacementTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), settings.CommandTimeout);
        // Above the replacement timeout plus the whole escalation of a timed-out command (30 + 15 + 30 s, three times).
        Assert.Equal(TimeSpan.FromSeconds(120 + 225 + 30), settings.KernelNbdTimeout);
        Assert.Equal(TimeSpan.FromSeconds(5), settings.NopInterval);
        Assert.Equal(TimeSpan.FromSeconds(5), settings.NopTimeout);
        Assert.Equal(TimeSpan.FromSeconds(15), settings.LoginTimeout);
        Assert.Equal(ReconnectPolicy.Default, settings.Reconnect);
        Assert.Equal("/run/iserblockd/control", settings.ControlSocket);
        Assert.Equal(LogEventLevel.Information, settings.Logging.Level);
        Assert.Null(settings.Logging.File);

        var node = Assert.Single(settings.Nodes);
        Assert.Equal(new HostPort("192.0.2.10", 3260), Assert.Single(node.Portals));
        Assert.Equal(IscsiTransportKind.Auto, node.Transport);
        Assert.Null(node.Chap);
        Assert.Equal(OperationalOverrides.None, node.Operational);
        var lun = Assert.Single(node.Luns);
        Assert.Equal(0, lun.Lun);
        Assert.True(lun.Device!.Value.IsAuto);
        Assert.Equal("san1-0", lun.ExportName);
        Assert.False(lun.ReadOnly);
        Assert.False(lun.HasExport);
    }

    [Fact]
    public void Full_config_is_read_field_by_field()
    {
        var secret = Secret("initiator.secret", "initiator-secret-1\n");
        var targetSecret = Secret("target.secret", "target-secret-22", UnixFileMode.UserRead);
        var settings = Parse($$"""
            {
              "initiatorName": "iqn.2024-01.com.example:host1",
              "replacementTimeout": 30, "nopInterval": 2, "nopTimeout": 3.5, "loginTimeout": 10,
              "kernelNbdTimeout": 45,
              "reconnect": { "minDelay": 0.5, "maxDelay": 8 },
              "logging": { "level": "debug", "components": { "IserBlockd.Iscsi": "warning", "IserBlockd.BlockDev": "verbose" },
                           "file": "/var/log/iserblockd.log" },
              "controlSocket": "/run/iserblockd-test/control",
              "nodes": [
                { "name": "san1", "portals": ["10.0.0.1:3261", "[fd00::1]:3262", "[fd00::2]", "storage.example.com"],
                  "target": "iqn.2003-01.org.example:disk1", "transport": "tcp",
                  "chap": { "user": "host1", "secretFile": "{{secret}}", "targetUser": "san1", "targetSecretFile": "{{targetSecret}}" },
                  "operational": { "headerDigest": "CRC32C,None", "dataDigest": "None", "maxRecvDataSegmentLength": 262144,
                                   "maxBurstLength": 1048576, "firstBurstLength": 65536, "immediateData": true,
                                   "initialR2T": false, "maxOutstandingR2T": 4, "queueDepth": 64 },
                  "luns": [
                    { "lun": 1, "device": "/dev/nbd3", "readOnly": true },
                    { "lun": 2, "nbd": { "socket": "/run/iserblockd/san1-2.sock", "listen": "127.0.0.1:10810", "exportName": "data" } }
                  ] },
                { "name": "san2", "portals": ["10.0.0.2"], "target": "eui.0123456789ABCDEF", "transport": "iser",
                  "luns": [ { "lun": 0, "nbd": { "listen": "[::1]" } } ] }
              ]
            }
            """);

        Assert.Equal("iqn.2024-01.com.example:host1", settings.InitiatorName);
        Assert.Equal(TimeSpan.FromSeconds(30), settings.ReplacementTimeout);
        Assert.Equal(TimeSpan.FromSeconds(45), settings.KernelNbdTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), settings.NopInterval);
        Assert.Equal(TimeSpan.FromSeconds(3.5), settings.NopTimeout);
        Assert.Equal(TimeSpan.FromSeconds(10), settings.LoginTimeout);
        Assert.Equal(new ReconnectPolicy(TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(8)), settings.Reconnect);
        Assert.Equal(LogEventLevel.Debug, settings.Logging.Level);
        Assert.Equal(LogEventLevel.Warning, settings.Logging.Components["IserBlockd.Iscsi"]);
        Assert.Equal(LogEventLevel.Verbose, settings.Logging.Components["IserBlockd.BlockDev"]);
        Assert.Equal("/var/log/iserblockd.log", settings.Logging.File);
        Assert.Equal("/run/iserblockd-test/control", settings.ControlSocket);

        var san1 = settings.FindNode("san1")!;
        Assert.Equal([new("10.0.0.1", 3261), new("fd00::1", 3262), new("fd00::2", 3260), new("storage.example.com", 3260)], san1.Portals);
        Assert.Equal("[fd00::1]:3262", san1.Portals[1].ToString());
        Assert.Equal(IscsiTransportKind.Tcp, san1.Transport);
        var chap = san1.Chap!;
        Assert.Equal("host1", chap.User);
        Assert.Equal(ChapSecret.FromString("initiator-secret-1"), chap.Secret); // the newline is not part of it
        Assert.True(chap.IsMutual);
        Assert.Equal("san1", chap.TargetUser);
        Assert.Equal(ChapSecret.FromString("target-secret-22"), chap.TargetSecret);
        var op = san1.Operational;
        Assert.Equal(["CRC32C", "None"], op.HeaderDigest!);
        Assert.Equal(["None"], op.DataDigest!);
        Assert.Equal(262144, op.MaxRecvDataSegmentLength);
        Assert.Equal(1048576, op.MaxBurstLength);
        Assert.Equal(65536, op.FirstBurstLength);
        Assert.True(op.ImmediateData);
        Assert.False(op.InitialR2T);
        Assert.Equal(4, op.MaxOutstandingR2T);
        Assert.Equal(64, op.QueueDepth);
        Assert.Equal(new DeviceSelection(3), san1.Luns[0].Device);
        Assert.True(san1.Luns[0].ReadOnly);
        Assert.Null(san1.Luns[1].Device);
        Assert.Equal("/run/iserblockd/san1-2.sock", san1.Luns[1].Socket);
        Assert.Equal(new HostPort("127.0.0.1", 10810), san1.Luns[1].Listen);
        Assert.Equal("data", san1.Luns[1].ExportName);

        var san2 = settings.FindNode("san2")!;
        Assert.Equal(IscsiTransportKind.Iser, san2.Transport);
        Assert.Equal(new HostPort("::1", 10809), san2.Luns[0].Listen);
        Assert.Equal("san2-0", san2.Luns[0].ExportName);
    }

    [Fact]
    public void Unknown_field_is_named_with_its_path()
    {
        var error = Assert.Single(Errors("""
            { "nodes": [ { "name": "a", "portals": ["h"], "target": "iqn.2003-01.org.example:a",
                           "luns": [ { "lun": 0, "devices": "auto" } ] } ] }
            """));
        Assert.Equal("nodes[0].luns[0].devices", error.Path);
        Assert.StartsWith("unknown field", error.Message);
        Assert.Contains("device", error.Message);
    }

    [Fact]
    public void Field_in_the_wrong_case_gets_a_suggestion()
    {
        var error = Assert.Single(Errors("""{ "ReplacementTimeout": 10 }"""));
        Assert.Equal("ReplacementTimeout", error.Path);
        Assert.Contains("did you mean \"replacementTimeout\"", error.Message);
    }

    [Fact]
    public void Every_wrong_type_is_reported_at_once()
    {
        var errors = Errors("""
            { "replacementTimeout": "120", "nodes": [ { "name": 7, "portals": "h:1", "target": "iqn.2003-01.org.example:a",
              "luns": [ { "lun": "0", "readOnly": "yes", "nbd": [] } ] } ],
              "logging": { "components": { "X": 3 } } }
            """).Select(e => e.ToString()).ToList();
        Assert.Equal(
        [
            "replacementTimeout: expected a number, got the string \"120\"",
            "nodes[0].name: expected a string, got the number 7",
            "nodes[0].portals: expected an array, got the string \"h:1\"",
            "nodes[0].luns[0].lun: expected an integer, got the string \"0\"",
            "nodes[0].luns[0].readOnly: expected true or false, got the string \"yes\"",
            "nodes[0].luns[0].nbd: expected an object, got an array",
            "logging.components[\"X\"]: expected a string, got the number 3",
        ], errors);
    }

    [Fact]
    public void Integer_out_of_range_for_its_type_is_a_type_error()
    {
        var error = Assert.Single(Errors("""{ "nodes": [ { "luns": [ { "lun": 1.5 } ] } ] }"""));
        Assert.Equal("nodes[0].luns[0].lun: expected an integer, got the number 1.5", error.ToString());
    }

    [Fact]
    public void Duplicate_field_is_an_error()
    {
        var error = Assert.Single(Errors("""{ "nopInterval": 1, "nopInterval": 2 }"""));
        Assert.Equal("nopInterval: duplicate field", error.ToString());
    }

    [Fact]
    public void Bad_device_names_the_field_and_what_is_expected()
    {
        var error = Assert.Single(Errors("""
            { "nodes": [ { "name": "a", "portals": ["h"], "target": "iqn.2003-01.org.example:a",
                           "luns": [ { "lun": 0, "device": "auto" } ] },
                         { "name": "b", "portals": ["h"], "target": "iqn.2003-01.org.example:b",
                           "luns": [ { "lun": 0, "device": "auto" }, { "lun": 1, "device": "/dev/sda" } ] } ] }
            """));
        Assert.Equal("nodes[1].luns[1].device: expected \"/dev/nbdN\", \"auto\", \"ublk\" or \"/dev/ublkbN\", got \"/dev/sda\"", error.ToString());
    }

    [Theory]
    [InlineData("\"fd00::1:3260\"", "write IPv6 addresses in brackets")]
    [InlineData("\"10.0.0.1:0\"", "the port must be a number from 1 to 65535")]
    [InlineData("\"10.0.0.1:99999\"", "the port must be a number from 1 to 65535")]
    [InlineData("\"[fd00::1\"", "missing ']'")]
    [InlineData("\"[10.0.0.1]:3260\"", "is not an IPv6 address")]
    [InlineData("\"bad host:3260\"", "neither an IP address nor a host name")]
    [InlineData("\"10.0.0.1:3260,1\"", "the port must be a number")]
    public void Bad_portal_is_explained(string portal, string expected)
    {
        var error = Assert.Single(Errors($$"""
            { "nodes": [ { "name": "a", "portals": ["10.0.0.9", {{portal}}], "target": "iqn.2003-01.org.example:a",
                           "luns": [ { "lun": 0, "device": "auto" } ] } ] }
            """));
        Assert.Equal("nodes[0].portals[1]", error.Path);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Semantic_errors_are_all_reported_with_their_paths()
    {
        var errors = Errors("""
            { "replacementTimeout": 60, "kernelNbdTimeout": 60, "nopTimeout": 0, "controlSocket": "run/control",
              "reconnect": { "minDelay": 10, "maxDelay": 5 },
              "logging": { "level": "loud", "file": "log.txt" },
              "initiatorName": "host1",
              "nodes": [
                { "name": "a b", "portals": [], "target": "disk1", "transport": "rdma",
                  "operational": { "headerDigest": "MD5", "maxBurstLength": 4096, "firstBurstLength": 8192, "maxOutstandingR2T": 0 },
                  "luns": [ { "lun": 0 }, { "lun": 0, "device": "/dev/nbd1" }, { "lun": 2, "device": "/dev/nbd1" },
                            { "lun": 3, "nbd": { "exportName": "x" } }, { "lun": 70000, "nbd": { "socket": "rel.sock" } } ] },
                { "portals": ["h"], "target": "iqn.2003-01.org.example:b", "luns": [] },
                null
              ] }
            """).Select(e => e.Path).ToList();
        Assert.Equal(
        [
            "initiatorName",
            "nopTimeout",
            "kernelNbdTimeout",
            "reconnect.maxDelay",
            "logging.level",
            "logging.file",
            "controlSocket",
            "nodes[0].name",
            "nodes[0].portals",
            "nodes[0].target",
            "nodes[0].transport",
            "nodes[0].operational.headerDigest",
            "nodes[0].operational.maxOutstandingR2T",
            "nodes[0].operational.firstBurstLength",
            "nodes[0].luns[0]",
            "nodes[0].luns[1].lun",
            "nodes[0].luns[2].device",
            "nodes[0].luns[3].nbd",
            "nodes[0].luns[4].lun",
            "nodes[0].luns[4].nbd.socket",
            "nodes[1].name",
            "nodes[1].luns",
            "nodes[2]",
        ], errors);
    }

    [Fact]
    public void Two_luns_on_one_socket_need_different_export_names()
    {
        var error = Assert.Single(Errors("""
            { "nodes": [ { "name": "a", "portals": ["h"], "target": "iqn.2003-01.org.example:a",
                           "luns": [ { "lun": 0, "nbd": { "socket": "/run/x.sock", "exportName": "e" } },
                                     { "lun": 1, "nbd": { "socket": "/run/x.sock" } },
                                     { "lun": 2, "nbd": { "socket": "/run/x.sock", "exportName": "e" } } ] } ] }
            """));
        Assert.Equal("nodes[0].luns[2].nbd.exportName", error.Path);
        Assert.Contains("already used by nodes[0].luns[0]", error.Message);
    }

    [Fact]
    public void Two_nodes_may_not_share_a_name()
    {
        var error = Assert.Single(Errors("""
            { "nodes": [ { "name": "a", "portals": ["h"], "target": "iqn.2003-01.org.example:a", "luns": [ { "lun": 0, "device": "auto" } ] },
                         { "name": "a", "portals": ["h"], "target": "iqn.2003-01.org.example:b", "luns": [ { "lun": 0, "device": "auto" } ] } ] }
            """));
        Assert.Equal("nodes[1].name", error.Path);
    }

    [Fact]
    public void Invalid_json_says_where()
    {
        var error = Assert.Single(Errors("{\n  \"nodes\": [\n    { \"name\": \"a\", }\n  ]\n}"));
        Assert.Equal("", error.Path);
        Assert.StartsWith("not valid JSON at line 3, column", error.Message);
    }

    [Fact]
    public void Non_object_root_is_refused()
    {
        Assert.Contains("must be a JSON object", Assert.Single(Errors("[]")).Message);
    }

    [Fact]
    public void Missing_file_is_a_config_error_naming_the_file()
    {
        var path = _dir.File("missing.json");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path));
        Assert.StartsWith(path + ": cannot read the configuration file", e.Message);
        Assert.Equal(78, ConfigException.ExitCode);
    }

    [Fact]
    public void Empty_nodes_list_is_valid()
    {
        Assert.Empty(Parse("""{ "nodes": [] }""").Nodes);
        Assert.Empty(Parse("{}").Nodes);
    }
}
