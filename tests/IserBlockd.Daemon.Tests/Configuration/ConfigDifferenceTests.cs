using System.Text;
using IserBlockd.Daemon.Configuration;

namespace IserBlockd.Daemon.Tests.Configuration;

/// <summary>What a reload applies: only the nodes and mappings that changed.</summary>
public sealed class ConfigDifferenceTests
{
    private static DaemonSettings Parse(string nodes, string globals = "") => ConfigLoader.Parse(Encoding.UTF8.GetBytes(
        $$"""{ "initiatorName": "iqn.2024-01.org.example:host", {{globals}} "nodes": [ {{nodes}} ] }"""), "test.json");

    private const string A = """{ "name": "a", "portals": ["127.0.0.1:3260"], "target": "iqn.2024-01.org.example:a", "luns": [ { "lun": 1, "device": "auto" } ] }""";
    private const string B = """{ "name": "b", "portals": ["127.0.0.1:3261"], "target": "iqn.2024-01.org.example:b", "luns": [ { "lun": 1, "device": "auto" } ] }""";

    [Fact]
    public void The_same_file_changes_nothing()
    {
        var d = ConfigDifference.Between(Parse(A + "," + B), Parse(A + "," + B));
        Assert.True(d.IsEmpty);
        Assert.Empty(d.NeedRestart);
    }

    [Fact]
    public void Added_removed_session_and_mapping_changes_are_told_apart()
    {
        var aMoreLuns = A.Replace("""{ "lun": 1, "device": "auto" } ]""", """{ "lun": 1, "device": "auto" }, { "lun": 2, "nbd": { "socket": "/run/x.sock" } } ]""", StringComparison.Ordinal);
        var d = ConfigDifference.Between(Parse(A + "," + B), Parse(aMoreLuns));
        Assert.Equal(["a"], d.MappingsChanged.Select(n => n.Name));
        Assert.Equal(["b"], d.Removed.Select(n => n.Name));
        Assert.Empty(d.Added);
        Assert.Empty(d.SessionChanged);

        var bOtherPortal = B.Replace("3261", "3262", StringComparison.Ordinal);
        d = ConfigDifference.Between(Parse(A), Parse(A + "," + bOtherPortal));
        Assert.Equal(["b"], d.Added.Select(n => n.Name));
        d = ConfigDifference.Between(Parse(A + "," + B), Parse(A + "," + bOtherPortal));
        Assert.Equal(["b"], d.SessionChanged.Select(n => n.Name));
        Assert.Empty(d.MappingsChanged);
    }

    [Fact]
    public void Session_globals_redo_every_node_and_others_wait_for_a_restart()
    {
        var d = ConfigDifference.Between(Parse(A + "," + B), Parse(A + "," + B, "\"nopInterval\": 9,"));
        Assert.Equal(["a", "b"], d.SessionChanged.Select(n => n.Name));
        d = ConfigDifference.Between(Parse(A), Parse(A, "\"metrics\": { \"listen\": \"127.0.0.1:9809\" }, \"logging\": { \"level\": \"debug\" },"));
        Assert.True(d.IsEmpty);
        Assert.Equal(["logging", "metrics"], d.NeedRestart);
        d = ConfigDifference.Between(Parse(A), Parse(A, "\"zeroCopyReads\": false,"));
        Assert.True(d.IsEmpty);
        Assert.Equal(["zeroCopyReads"], d.NeedRestart);
        d = ConfigDifference.Between(Parse(A), Parse(A, "\"lowDepthPollMicroseconds\": 0,"));
        Assert.True(d.IsEmpty);
        Assert.Equal(["lowDepthPollMicroseconds"], d.NeedRestart);
    }
}
