using System.Diagnostics.Metrics;
using IserBlockd.Daemon.Luns;
using IserBlockd.Daemon.Runtime;
using IserBlockd.Daemon.Sessions;
using IserBlockd.Primitives.Native;
using IserBlockd.Primitives.Polling;

namespace IserBlockd.Daemon.Metrics;

/// <summary>
/// The daemon's instruments (System.Diagnostics.Metrics, meter <see cref="MeterName"/>), named as Prometheus shows them:
/// per LUN (labels node, lun) operations, bytes and latency by kind, requests in flight, errors by errno, size; per
/// session (labels node, target, transport) state, reconnects, commands outstanding, command timeouts, aborts and
/// resets. The counters are observed from <see cref="LunStatistics"/> and the sessions at collection time, so they
/// cost the I/O path nothing and agree with <c>iserblockctl list</c>; only the latency histogram is recorded per request.
/// </summary>
public static class DaemonMetrics
{
    public const string MeterName = "IserBlockd";

    private static readonly Meter Meter = new(MeterName, DaemonVersionText());
    private static readonly Lock Gate = new();
    private static readonly List<(string Node, int Lun, LunStatistics Statistics, Func<long> Size)> Luns = [];
    private static readonly List<NodeSupervisor> Sessions = [];
    private static LowDepthPoller? Poller;

    /// <summary>Seconds per request by kind; buckets from 50 µs to 10 s.</summary>
    public static readonly Histogram<double> LunLatency = Meter.CreateHistogram(
        "iserblockd_lun_latency_seconds", unit: null, "Time from request to completion on the target, by kind", tags: null,
        new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });

    static DaemonMetrics()
    {
        Meter.CreateObservableCounter("iserblockd_lun_operations", () => PerKind(s => s.Operations), unit: null, "Block requests completed, by kind");
        Meter.CreateObservableCounter("iserblockd_lun_bytes", () => PerKind(s => s.Bytes), unit: null, "Bytes read and written (write_zeroes: bytes zeroed), by kind");
        Meter.CreateObservableGauge("iserblockd_lun_in_flight", () => PerLun(s => s.InFlight), unit: null, "Block requests in flight");
        Meter.CreateObservableCounter("iserblockd_lun_errors", ErrorsByErrno, unit: null, "Block requests that failed, by the errno the client saw");
        Meter.CreateObservableGauge("iserblockd_lun_size_bytes", LunSizes, unit: null, "LUN capacity in bytes (READ CAPACITY)");
        Meter.CreateObservableGauge("iserblockd_session_state", SessionStates, unit: null, "1 for the state each node's session is in");
        Meter.CreateObservableCounter("iserblockd_session_reconnects", () => PerSession(s => s.Reconnects), unit: null, "Session reinstatements after a connection loss");
        Meter.CreateObservableCounter("iserblockd_session_command_timeouts", () => PerSession(s => Counter(s, c => c.CommandTimeouts)), unit: null, "SCSI commands that passed their deadline");
        Meter.CreateObservableCounter("iserblockd_session_aborts", () => PerSession(s => Counter(s, c => c.Aborts)), unit: null, "ABORT TASK sent for commands past their deadline");
        Meter.CreateObservableCounter("iserblockd_session_lun_resets", () => PerSession(s => Counter(s, c => c.LunResets)), unit: null, "LOGICAL UNIT RESET sent when an abort did not end a command");
        Meter.CreateObservableCounter("iserblockd_session_commands_reissued", () => PerSession(s => Counter(s, c => c.CommandsReissued)), unit: null, "Commands re-issued on a reinstated session");
        Meter.CreateObservableCounter("iserblockd_session_commands_sent", () => PerSession(s => Counter(s, c => c.CommandsSent)), unit: null, "SCSI commands sent");
        Meter.CreateObservableCounter("iserblockd_session_data_in_spliced_bytes", () => PerSession(s => Counter(s, c => c.DataInBytesSpliced)), unit: null, "READ data spliced from the target's socket on to NBD clients, never copied through the daemon");
        Meter.CreateObservableCounter("iserblockd_low_depth_polls", LowDepthPolls, unit: null, "Polls of the I/O thread at queue depth one, by how they ended: hit (a socket became readable) or miss (the budget ran out)");
        Meter.CreateObservableGauge("iserblockd_session_outstanding_commands", () => PerSession(s => s.Session?.OutstandingCommands ?? 0), unit: null, "SCSI commands queued or in flight on the session");
    }

    /// <summary>Makes sure the instruments exist (the static constructor runs) before a listener subscribes.</summary>
    public static void EnsureCreated() { }

    public static void Register(string node, int lun, LunStatistics statistics, Func<long> size)
    {
        statistics.Label(node, lun);
        lock (Gate) Luns.Add((node, lun, statistics, size));
    }

    public static void Unregister(LunStatistics statistics)
    {
        lock (Gate) Luns.RemoveAll(l => l.Statistics == statistics);
    }

    /// <summary>The daemon's poller at queue depth one (one per daemon).</summary>
    public static void Register(LowDepthPoller poller)
    {
        lock (Gate) Poller = poller;
    }

    public static void Unregister(LowDepthPoller poller)
    {
        lock (Gate) if (Poller == poller) Poller = null;
    }

    private static IEnumerable<Measurement<long>> LowDepthPolls()
    {
        LowDepthPoller? poller;
        lock (Gate) poller = Poller;
        if (poller == null || !poller.Enabled) yield break;
        yield return new Measurement<long>(poller.Hits, new KeyValuePair<string, object?>("result", "hit"));
        yield return new Measurement<long>(poller.Misses, new KeyValuePair<string, object?>("result", "miss"));
    }

    public static void Register(NodeSupervisor session)
    {
        lock (Gate) if (!Sessions.Contains(session)) Sessions.Add(session);
    }

    public static void Unregister(NodeSupervisor session)
    {
        lock (Gate) Sessions.Remove(session);
    }

    private static (string Node, int Lun, LunStatistics Statistics, Func<long> Size)[] LunSnapshot()
    {
        lock (Gate) return [.. Luns];
    }

    private static NodeSupervisor[] SessionSnapshot()
    {
        lock (Gate) return [.. Sessions];
    }

    private static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);

    private static IEnumerable<Measurement<long>> PerKind(Func<LunStatistics, Func<LunIoKind, long>> read)
    {
        foreach (var (node, lun, statistics, _) in LunSnapshot())
        {
            var value = read(statistics);
            for (var k = 0; k < LunIoKindNames.Count; k++)
                yield return new(value((LunIoKind)k), Tag("node", node), Tag("lun", lun), Tag("kind", ((LunIoKind)k).ToName()));
        }
    }

    private static IEnumerable<Measurement<long>> PerLun(Func<LunStatistics, long> read)
    {
        foreach (var (node, lun, statistics, _) in LunSnapshot())
            yield return new(read(statistics), Tag("node", node), Tag("lun", lun));
    }

    private static IEnumerable<Measurement<long>> LunSizes()
    {
        foreach (var (node, lun, _, size) in LunSnapshot())
            yield return new(size(), Tag("node", node), Tag("lun", lun));
    }

    private static IEnumerable<Measurement<long>> ErrorsByErrno()
    {
        foreach (var (node, lun, statistics, _) in LunSnapshot())
        {
            foreach (var (errno, count) in statistics.ErrorsByErrno())
                yield return new(count, Tag("node", node), Tag("lun", lun), Tag("errno", ErrnoName(errno)));
        }
    }

    private static IEnumerable<Measurement<long>> PerSession(Func<NodeSupervisor, long> read)
    {
        foreach (var session in SessionSnapshot())
            yield return new(read(session), SessionTags(session));
    }

    private static long Counter(NodeSupervisor session, Func<IserBlockd.Iscsi.Sessions.IscsiSessionCounters, long> read) =>
        session.Session is { } s ? read(s.Counters) : 0;

    private static IEnumerable<Measurement<long>> SessionStates()
    {
        foreach (var session in SessionSnapshot())
        {
            var state = session.State;
            foreach (var candidate in Enum.GetValues<NodeState>())
                yield return new(candidate == state ? 1 : 0, [.. SessionTags(session), Tag("state", candidate.ToDisplayString())]);
        }
    }

    private static KeyValuePair<string, object?>[] SessionTags(NodeSupervisor session) =>
    [
        Tag("node", session.Node.Name), Tag("target", session.Node.Target),
        Tag("transport", session.TransportName.Length > 0 ? session.TransportName : "none"),
    ];

    /// <summary>The errno's symbolic name (EIO), or its number for a value without one.</summary>
    public static string ErrnoName(int errno) =>
        Errno.TryName(errno) ?? errno.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string DaemonVersionText() => Hosting.DaemonVersion.Text;
}
