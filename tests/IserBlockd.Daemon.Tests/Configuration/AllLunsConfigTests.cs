using System.Text;
using IserBlockd.Daemon.Configuration;

namespace IserBlockd.Daemon.Tests.Configuration;

/// <summary><c>"luns": "all"</c> with a <c>lunTemplate</c>: every disk LUN of the target, each exposed as the template says
/// with <c>{lun}</c> standing for its number; mistakes are named by their field.</summary>
public sealed class AllLunsConfigTests
{
    private static DaemonSettings Parse(string json) => ConfigLoader.Parse(Encoding.UTF8.GetBytes(json), "test.json");

    private static string Node(string luns) => $$"""
        { "nodes": [ { "name": "san", "portals": ["192.0.2.10"], "target": "iqn.2003-01.org.example:disk1", {{luns}} } ] }
        """;

    [Fact]
    public void All_without_a_template_maps_each_disk_as_a_kernel_device()
    {
        var node = Parse(Node("\"luns\": \"all\"")).Nodes[0];
        Assert.Empty(node.Luns);
        var mapping = node.AllLuns!.For(3, node.Name);
        Assert.Equal(new LunMapping(3, DeviceSelection.Auto, null, null, "san-3", false), mapping);
    }

    [Fact]
    public void The_template_puts_the_lun_number_in_the_socket_path_and_the_export_name()
    {
        var node = Parse(Node("""
            "luns": "all", "lunTemplate": { "nbd": { "socket": "/run/iserblockd/san-{lun}.sock", "exportName": "disk{lun}" }, "readOnly": true }
            """)).Nodes[0];
        var mapping = node.AllLuns!.For(12, node.Name);
        Assert.Equal("/run/iserblockd/san-12.sock", mapping.Socket);
        Assert.Equal("disk12", mapping.ExportName);
        Assert.Null(mapping.Device);
        Assert.True(mapping.ReadOnly);

        var shared = Parse(Node("""
            "luns": "all", "lunTemplate": { "nbd": { "listen": "127.0.0.1:10809" } }
            """)).Nodes[0].AllLuns!.For(2, "san");
        Assert.Equal("san-2", shared.ExportName);
        Assert.Equal("127.0.0.1:10809", shared.Listen.ToString());
    }

    [Fact]
    public void A_dump_reads_back_the_same()
    {
        var settings = Parse(Node("""
            "luns": "all", "lunTemplate": { "device": "ublk", "nbd": { "socket": "/run/s-{lun}.sock" } }
            """));
        var again = ConfigLoader.Parse(Encoding.UTF8.GetBytes(ConfigDump.ToJson(settings)), "dump.json");
        Assert.Equal(settings.Nodes[0].AllLuns, again.Nodes[0].AllLuns);
        Assert.True(ConfigDifference.Between(settings, again).IsEmpty);
    }

    [Theory]
    [InlineData("\"luns\": \"some\"", "nodes[0].luns", "expected \"all\"")]
    [InlineData("\"luns\": 3", "nodes[0].luns", "expected \"all\" or an array of LUN mappings, got the number 3")]
    [InlineData("\"luns\": \"all\", \"lunTemplate\": { \"device\": \"/dev/nbd3\" }", "nodes[0].lunTemplate.device", "every LUN needs its own")]
    [InlineData("\"luns\": \"all\", \"lunTemplate\": { \"lun\": 1, \"device\": \"auto\" }", "nodes[0].lunTemplate.lun", "not in a template")]
    [InlineData("\"luns\": \"all\", \"lunTemplate\": { \"nbd\": { \"socket\": \"/run/one.sock\", \"exportName\": \"disk\" } }", "nodes[0].lunTemplate.nbd", "put {lun} in")]
    [InlineData("\"luns\": \"all\", \"lunTemplate\": { \"nbd\": { \"listen\": \"127.0.0.1:10809\", \"exportName\": \"disk\" } }", "nodes[0].lunTemplate.nbd.exportName", "put {lun} in it")]
    [InlineData("\"luns\": \"all\", \"lunTemplate\": { \"nbd\": { \"socket\": \"run/s-{lun}.sock\" } }", "nodes[0].lunTemplate.nbd.socket", "expected an absolute path")]
    [InlineData("\"luns\": [ { \"lun\": 0, \"device\": \"auto\" } ], \"lunTemplate\": { \"device\": \"auto\" }", "nodes[0].lunTemplate", "only with \"luns\": \"all\"")]
    public void Mistakes_are_named_by_their_field(string luns, string path, string message)
    {
        var errors = Assert.Throws<ConfigException>(() => Parse(Node(luns))).Errors;
        var error = Assert.Single(errors);
        Assert.Equal(path, error.Path);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }
}
