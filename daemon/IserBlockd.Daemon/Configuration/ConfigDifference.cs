namespace IserBlockd.Daemon.Configuration;

/// <summary>
/// What a reload changes: nodes added, removed, whose session must be redone (portals, target, transport, CHAP,
/// operational keys, or the initiator name and session timers for all), and nodes whose LUN mappings alone changed.
/// Nodes absent from every list are untouched: their sessions see no pause.
/// </summary>
public sealed record ConfigDifference(
    IReadOnlyList<NodeSettings> Added,
    IReadOnlyList<NodeSettings> Removed,
    IReadOnlyList<NodeSettings> SessionChanged,
    IReadOnlyList<NodeSettings> MappingsChanged,
    IReadOnlyList<string> NeedRestart)
{
    public bool IsEmpty => Added.Count == 0 && Removed.Count == 0 && SessionChanged.Count == 0 && MappingsChanged.Count == 0;

    public static ConfigDifference Between(DaemonSettings old, DaemonSettings updated)
    {
        var sessionsRedone = !SameSessionGlobals(old, updated);
        var added = new List<NodeSettings>();
        var sessionChanged = new List<NodeSettings>();
        var mappingsChanged = new List<NodeSettings>();
        foreach (var node in updated.Nodes)
        {
            var before = old.FindNode(node.Name);
            if (before == null) added.Add(node);
            else if (sessionsRedone || !SameSession(before, node)) sessionChanged.Add(node);
            else if (!before.Luns.SequenceEqual(node.Luns)) mappingsChanged.Add(node);
        }
        var removed = old.Nodes.Where(n => updated.FindNode(n.Name) == null).ToList();

        var restart = new List<string>();
        if (old.ControlSocket != updated.ControlSocket) restart.Add("controlSocket");
        if (!SameLogging(old.Logging, updated.Logging)) restart.Add("logging");
        if (!SameIser(old, updated)) restart.Add("iser");
        if (old.MetricsListen != updated.MetricsListen) restart.Add("metrics");
        if (old.ZeroCopyReads != updated.ZeroCopyReads) restart.Add("zeroCopyReads");
        if (old.LowDepthPollMicroseconds != updated.LowDepthPollMicroseconds) restart.Add("lowDepthPollMicroseconds");
        return new ConfigDifference(added, removed, sessionChanged, mappingsChanged, restart);
    }

    /// <summary>What every session of the daemon was logged in with (a change redoes them all).</summary>
    private static bool SameSessionGlobals(DaemonSettings a, DaemonSettings b) =>
        a.InitiatorName == b.InitiatorName && a.ReplacementTimeout == b.ReplacementTimeout && a.NopInterval == b.NopInterval
        && a.NopTimeout == b.NopTimeout && a.CommandTimeout == b.CommandTimeout && a.LoginTimeout == b.LoginTimeout && a.KernelNbdTimeout == b.KernelNbdTimeout
        && a.Reconnect == b.Reconnect && a.KernelNbdConnections == b.KernelNbdConnections && a.UblkQueueDepth == b.UblkQueueDepth && a.KernelNbdMethod == b.KernelNbdMethod;

    public static bool SameSession(NodeSettings a, NodeSettings b) =>
        a.Name == b.Name && a.Target == b.Target && a.Transport == b.Transport && a.Portals.SequenceEqual(b.Portals)
        && SameChap(a.Chap, b.Chap) && SameOperational(a.Operational, b.Operational)
        && a.AllLuns == b.AllLuns; // "luns": "all" or its template changed: the node is redone

    private static bool SameChap(ChapSettings? a, ChapSettings? b) =>
        a == null || b == null
            ? a == b
            : a.User == b.User && a.Secret.Equals(b.Secret) && a.TargetUser == b.TargetUser
              && (a.TargetSecret == null ? b.TargetSecret == null : a.TargetSecret.Equals(b.TargetSecret));

    private static bool SameOperational(OperationalOverrides a, OperationalOverrides b) =>
        SameList(a.HeaderDigest, b.HeaderDigest) && SameList(a.DataDigest, b.DataDigest)
        && a with { HeaderDigest = null, DataDigest = null } == b with { HeaderDigest = null, DataDigest = null };

    private static bool SameList(IReadOnlyList<string>? a, IReadOnlyList<string>? b) =>
        a == null || b == null ? a == b : a.SequenceEqual(b);

    private static bool SameIser(DaemonSettings a, DaemonSettings b) =>
        a.IserBuffers.DataBuffers.SizeClasses.SequenceEqual(b.IserBuffers.DataBuffers.SizeClasses)
        && a.IserBuffers.BounceBuffers.SizeClasses.SequenceEqual(b.IserBuffers.BounceBuffers.SizeClasses)
        && a.IserBuffers.MemoryWindows == b.IserBuffers.MemoryWindows;

    private static bool SameLogging(LoggingSettings a, LoggingSettings b) =>
        a.Level == b.Level && a.File == b.File && a.Components.Count == b.Components.Count
        && a.Components.All(c => b.Components.TryGetValue(c.Key, out var level) && level == c.Value);
}
