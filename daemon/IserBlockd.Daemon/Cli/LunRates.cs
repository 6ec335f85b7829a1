using IserBlockd.Daemon.Control;
using IserBlockd.Daemon.Luns;

namespace IserBlockd.Daemon.Cli;

/// <summary>One LUN over one interval of <c>iserblockctl stats</c>: rates and latency percentiles, from the difference of
/// two snapshots of the daemon's cumulative figures (as iostat -x computes from /proc/diskstats).</summary>
public sealed class LunRates
{
    public string Node { get; set; } = "";
    public int Lun { get; set; }
    public double IntervalSeconds { get; set; }
    public double ReadIops { get; set; }
    public double WriteIops { get; set; }
    public double ReadMBps { get; set; }
    public double WriteMBps { get; set; }
    public double FlushesPerSecond { get; set; }
    public double TrimsPerSecond { get; set; }
    /// <summary>Latency percentiles in milliseconds (null: no request of that kind completed in the interval).</summary>
    public double? ReadP50Ms { get; set; }
    public double? ReadP99Ms { get; set; }
    public double? WriteP50Ms { get; set; }
    public double? WriteP99Ms { get; set; }
    public long InFlight { get; set; }
    /// <summary>Requests that failed in the interval.</summary>
    public long Errors { get; set; }

    public static LunRates Between(string node, LunInfo before, LunInfo after, double seconds)
    {
        LunKindStatistics Kind(LunInfo info, LunIoKind kind) =>
            info.Kinds?.FirstOrDefault(k => k.Kind == kind.ToName()) ?? new LunKindStatistics { LatencyBucketsMicroseconds = new long[LatencyBuckets.Count] };
        long Ops(LunIoKind kind) => Kind(after, kind).Operations - Kind(before, kind).Operations;
        long Bytes(LunIoKind kind) => Kind(after, kind).Bytes - Kind(before, kind).Bytes;
        long[] Buckets(params LunIoKind[] kinds)
        {
            var delta = new long[LatencyBuckets.Count];
            foreach (var kind in kinds)
            {
                var a = Kind(after, kind).LatencyBucketsMicroseconds;
                var b = Kind(before, kind).LatencyBucketsMicroseconds;
                for (var i = 0; i < delta.Length && i < a.Length; i++) delta[i] += a[i] - (i < b.Length ? b[i] : 0);
            }
            return delta;
        }
        double? Ms(long[] buckets, double fraction) => LatencyBuckets.Percentile(buckets, fraction) is { } us ? us / 1000 : null;
        var reads = Buckets(LunIoKind.Read);
        var writes = Buckets(LunIoKind.Write, LunIoKind.WriteZeroes);
        seconds = Math.Max(seconds, 0.001);
        return new LunRates
        {
            Node = node,
            Lun = after.Lun,
            IntervalSeconds = Math.Round(seconds, 3),
            ReadIops = Math.Round(Ops(LunIoKind.Read) / seconds, 1),
            WriteIops = Math.Round((Ops(LunIoKind.Write) + Ops(LunIoKind.WriteZeroes)) / seconds, 1),
            ReadMBps = Math.Round(Bytes(LunIoKind.Read) / seconds / 1e6, 2),
            WriteMBps = Math.Round((Bytes(LunIoKind.Write) + Bytes(LunIoKind.WriteZeroes)) / seconds / 1e6, 2),
            FlushesPerSecond = Math.Round(Ops(LunIoKind.Flush) / seconds, 1),
            TrimsPerSecond = Math.Round(Ops(LunIoKind.Trim) / seconds, 1),
            ReadP50Ms = Ms(reads, 0.50),
            ReadP99Ms = Ms(reads, 0.99),
            WriteP50Ms = Ms(writes, 0.50),
            WriteP99Ms = Ms(writes, 0.99),
            InFlight = after.Counters.InFlight,
            Errors = after.Counters.Errors - before.Counters.Errors,
        };
    }
}
