using IserBlockd.Daemon.Identity;
using IserBlockd.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;

namespace IserBlockd.Daemon.Tests.Identity;

public sealed class NodeIsidStoreTests
{
    [Fact]
    public void A_node_keeps_its_isid_across_restarts_and_nodes_differ()
    {
        using var dir = new TempDirectory();
        var first = new NodeIsidStore([dir.File("isid")]).GetOrCreate("san1", "iqn.2003-01.org.example:a@10.0.0.1:3260", NullLogger.Instance);
        var again = new NodeIsidStore([dir.File("isid")]).GetOrCreate("san1", "iqn.2003-01.org.example:a@10.0.0.1:3260", NullLogger.Instance);
        var other = new NodeIsidStore([dir.File("isid")]).GetOrCreate("san2", "iqn.2003-01.org.example:b@10.0.0.1:3260", NullLogger.Instance);
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public void An_unwritable_directory_falls_back_to_the_next()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("blocked"), "a file, not a directory");
        var store = new NodeIsidStore([dir.File("blocked"), dir.File("user")]);
        var isid = store.GetOrCreate("n", "t", NullLogger.Instance);
        Assert.Equal(isid, store.GetOrCreate("n", "t", NullLogger.Instance));
        Assert.Single(Directory.GetFiles(dir.File("user")));
    }
}
