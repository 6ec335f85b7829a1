namespace IserBlockd.Daemon.Luns;

/// <summary>
/// A lock-free latency histogram with power-of-two buckets in microseconds (bucket i counts [2^i, 2^(i+1)) µs; bucket 0
/// also takes anything under 1 µs), cheap enough for every request. Snapshots of it are subtracted to get the
/// percentiles of an interval (<c>iserblockctl stats</c>).
/// </summary>
public sealed class LatencyBuckets
{
    public const int Count = 32;

    private readonly long[] _counts = new long[Count];

    public void Record(long microseconds)
    {
        var bucket = microseconds <= 1 ? 0 : Math.Min(Count - 1, 63 - long.LeadingZeroCount(microseconds));
        Interlocked.Increment(ref _counts[bucket]);
    }

    public long[] Snapshot()
    {
        var copy = new long[Count];
        for (var i = 0; i < Count; i++) copy[i] = Volatile.Read(ref _counts[i]);
        return copy;
    }

    /// <summary>The latency in µs below which <paramref name="fraction"/> of the counted requests fall (the upper edge of
    /// the bucket that holds that rank), or null when nothing was counted.</summary>
    public static double? Percentile(IReadOnlyList<long> counts, double fraction)
    {
        long total = 0;
        foreach (var c in counts) total += c;
        if (total <= 0) return null;
        var rank = (long)Math.Ceiling(total * fraction);
        long seen = 0;
        for (var i = 0; i < counts.Count; i++)
        {
            seen += counts[i];
            if (seen >= rank) return Math.Pow(2, i + 1);
        }
        return Math.Pow(2, counts.Count);
    }
}
