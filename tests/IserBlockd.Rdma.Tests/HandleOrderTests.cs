using IserBlockd.Rdma.Handles;

namespace IserBlockd.Rdma.Tests;

/// <summary>
/// The handles release rdma-core objects in dependency order whatever order they are disposed in
/// (checked with stand-in handles that record when their object is freed).
/// </summary>
public sealed class HandleOrderTests
{
    private sealed class RecordingHandle : RdmaSafeHandle
    {
        private readonly List<string> _log;
        private readonly string _name;

        public RecordingHandle(List<string> log, string name, params RecordingHandle[] parents)
        {
            _log = log;
            _name = name;
            AddDependencies(parents);
            Attach(1);
        }

        public static RecordingHandle Failing(List<string> log, RecordingHandle parent)
        {
            var h = new RecordingHandle(log, "failed", parent, true);
            return h;
        }

        private RecordingHandle(List<string> log, string name, RecordingHandle parent, bool fail)
        {
            _log = log;
            _name = name;
            AddDependencies(parent);
            if (fail) Abandon();
        }

        protected override bool Free(IntPtr native)
        {
            _log.Add(_name);
            return true;
        }
    }

    [Fact]
    public void Disposing_parents_first_still_frees_children_first()
    {
        var log = new List<string>();
        var channel = new RecordingHandle(log, "event channel");
        var cmId = new RecordingHandle(log, "cm_id", channel);
        var pd = new RecordingHandle(log, "pd", cmId);
        var compChannel = new RecordingHandle(log, "comp channel", cmId);
        var cq = new RecordingHandle(log, "cq", cmId, compChannel);
        var qp = new RecordingHandle(log, "qp", cmId, pd, cq);
        var mr = new RecordingHandle(log, "mr", pd);

        // The worst order: owners first.
        foreach (var h in new[] { channel, cmId, pd, compChannel, cq, qp }) h.Dispose();
        Assert.Equal(["qp", "cq", "comp channel"], log);
        Assert.DoesNotContain("pd", log); // the MR still needs it

        mr.Dispose();
        Assert.Equal(["qp", "cq", "comp channel", "mr", "pd", "cm_id", "event channel"], log);
    }

    [Fact]
    public void The_live_count_tracks_native_objects()
    {
        var log = new List<string>();
        var before = RdmaSafeHandle.LiveCount;
        var parent = new RecordingHandle(log, "parent");
        var child = new RecordingHandle(log, "child", parent);
        Assert.Equal(before + 2, RdmaSafeHandle.LiveCount);
        parent.Dispose();
        child.Dispose();
        Assert.Equal(before, RdmaSafeHandle.LiveCount);
    }

    [Fact]
    public void A_failed_creation_gives_back_its_parent_reference()
    {
        var log = new List<string>();
        var parent = new RecordingHandle(log, "parent");
        var failed = RecordingHandle.Failing(log, parent);
        Assert.True(failed.IsInvalid || failed.IsClosed);
        parent.Dispose();
        Assert.Equal(["parent"], log); // released at once: the failed child holds nothing
    }

    [Fact]
    public void A_child_cannot_be_created_on_a_disposed_parent()
    {
        var log = new List<string>();
        var parent = new RecordingHandle(log, "parent");
        parent.Dispose();
        Assert.Throws<ObjectDisposedException>(() => new RecordingHandle(log, "child", parent));
        Assert.Equal(["parent"], log);
    }
}
