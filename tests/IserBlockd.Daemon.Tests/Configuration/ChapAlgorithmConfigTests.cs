using System.Text;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Iscsi.Security;

namespace IserBlockd.Daemon.Tests.Configuration;

/// <summary><c>chap.algorithms</c> and the names <c>--chap-algorithms</c> takes, as open-iscsi's chap_algs.</summary>
public sealed class ChapAlgorithmConfigTests : IDisposable
{
    private readonly TestSupport.TempDirectory _dir = new("iserblockd-chapalg");

    public void Dispose() => _dir.Dispose();

    private DaemonSettings Load(string algorithms)
    {
        var secret = _dir.File("secret");
        File.WriteAllText(secret, "initiator-secret-1");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var json = $$"""
            { "nodes": [ { "name": "a", "portals": ["h"], "target": "iqn.2003-01.org.example:a",
                           "chap": { "user": "u", "secretFile": "{{secret}}"{{algorithms}} },
                           "luns": [ { "lun": 0, "device": "auto" } ] } ] }
            """;
        return ConfigLoader.Parse(Encoding.UTF8.GetBytes(json), "test.json");
    }

    [Fact]
    public void Default_offer_is_all_four_strongest_first()
    {
        var chap = Load("").Nodes[0].Chap!;
        Assert.Equal([ChapAlgorithm.Sha3_256, ChapAlgorithm.Sha256, ChapAlgorithm.Sha1, ChapAlgorithm.Md5], chap.Offer);
    }

    [Fact]
    public void Configured_list_keeps_its_order()
    {
        var chap = Load(""", "algorithms": ["sha256", "MD5"]""").Nodes[0].Chap!;
        Assert.Equal([ChapAlgorithm.Sha256, ChapAlgorithm.Md5], chap.Offer);
        Assert.Contains("\"SHA256\"", ConfigDump.ToJson(Load(""", "algorithms": ["SHA-256"]""")));
    }

    [Theory]
    [InlineData("""["MD4"]""", "unknown CHAP algorithm 'MD4'")]
    [InlineData("""["MD5", "md5"]""", "listed twice")]
    [InlineData("""[]""", "no CHAP algorithm given")]
    [InlineData("""[null]""", "unknown CHAP algorithm 'null'")]
    public void Bad_list_is_an_error_at_its_path(string list, string message)
    {
        var e = Assert.Throws<ConfigException>(() => Load($""", "algorithms": {list}"""));
        var error = Assert.Single(e.Errors);
        Assert.Equal("nodes[0].chap.algorithms", error.Path);
        Assert.Contains(message, error.Message);
    }

    [Theory]
    [InlineData("SHA3-256,SHA256,SHA1,MD5", new[] { ChapAlgorithm.Sha3_256, ChapAlgorithm.Sha256, ChapAlgorithm.Sha1, ChapAlgorithm.Md5 })]
    [InlineData(" md5 , sha-1 ", new[] { ChapAlgorithm.Md5, ChapAlgorithm.Sha1 })]
    public void Command_line_lists_parse(string text, ChapAlgorithm[] expected)
    {
        Assert.True(ChapAlgorithmNames.TryParseList(text, out var parsed, out var error), error);
        Assert.Equal(expected, parsed);
        Assert.Equal(text.Replace(" ", "").ToUpperInvariant().Replace("SHA-1", "SHA1"), ChapAlgorithmNames.Format(parsed));
    }
}
