using System.Diagnostics;
using IserBlockd.Daemon.Metrics;

namespace IserBlockd.Daemon.Luns;

/// <summary>
/// What went through one LUN, updated lock-free on the I/O path: operations and bytes by kind, latency by kind, in
/// flight, errors by errno. It is the one source of the figures: <c>iserblockctl list</c> and <c>stats</c> read it, and
/// the <c>iserblockd_lun_…</c> metrics observe it (<see cref="DaemonMetrics"/>), so they always agree.
/// </summary>
public sealed class LunStatistics
{
    private const int MaxErrno = 134;

    private readonly long[] _operations = new long[LunIoKindNames.Count];
    private readonly long[] _bytes = new long[LunIoKindNames.Count];
    private readonly long[] _latencyTicks = new long[LunIoKindNames.Count];
    private readonly LatencyBuckets[] _latency = [new(), new(), new(), new(), new()];
    private readonly long[] _errorsByErrno = new long[MaxErrno + 1];
    private long _errors, _inFlight;
    private KeyValuePair<string, object?>[][] _tags = [];

    public long Reads => Operations(LunIoKind.Read);
    public long Writes => Operations(LunIoKind.Write) + Operations(LunIoKind.WriteZeroes);
    public long BytesRead => Bytes(LunIoKind.Read);
    public long BytesWritten => Bytes(LunIoKind.Write) + Bytes(LunIoKind.WriteZeroes);
    public long Flushes => Operations(LunIoKind.Flush);
    public long Trims => Operations(LunIoKind.Trim);
    public long Errors => Volatile.Read(ref _errors);
    public long InFlight => Volatile.Read(ref _inFlight);

    public long Operations(LunIoKind kind) => Volatile.Read(ref _operations[(int)kind]);

    public long Bytes(LunIoKind kind) => Volatile.Read(ref _bytes[(int)kind]);

    /// <summary>Total time the completed operations of a kind took, in seconds (the histogram's sum).</summary>
    public double LatencySeconds(LunIoKind kind) => Volatile.Read(ref _latencyTicks[(int)kind]) / (double)Stopwatch.Frequency;

    public long[] LatencyBuckets(LunIoKind kind) => _latency[(int)kind].Snapshot();

    /// <summary>Errors by errno value (EIO 5, EPERM 1, ENOSPC 28, ...), those seen so far.</summary>
    public IEnumerable<(int Errno, long Count)> ErrorsByErrno()
    {
        for (var errno = 0; errno <= MaxErrno; errno++)
        {
            var count = Volatile.Read(ref _errorsByErrno[errno]);
            if (count > 0) yield return (errno, count);
        }
    }

    /// <summary>Names the LUN in the latency histogram's labels (node, lun, kind); until then nothing is recorded there.</summary>
    internal void Label(string node, int lun)
    {
        var lunText = lun.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _tags = [.. Enumerable.Range(0, LunIoKindNames.Count).Select(k => new KeyValuePair<string, object?>[]
        {
            new("node", node), new("lun", lunText), new("kind", ((LunIoKind)k).ToName()),
        })];
    }

    /// <summary>A request starts; returns its start timestamp for <see cref="Completed"/> or <see cref="Failed"/>;
    /// <see cref="End"/> when it is over, whatever the outcome.</summary>
    internal long Begin()
    {
        Interlocked.Increment(ref _inFlight);
        return Stopwatch.GetTimestamp();
    }

    internal void Completed(LunIoKind kind, long bytes, long started)
    {
        Interlocked.Increment(ref _operations[(int)kind]);
        if (bytes > 0) Interlocked.Add(ref _bytes[(int)kind], bytes);
        RecordLatency(kind, started);
    }

    /// <summary>Counts a failed request under the errno its client sees, and hands the exception back to be thrown.</summary>
    internal IserBlockd.BlockDev.BlockDeviceException Failed(LunIoKind kind, long started, IserBlockd.BlockDev.BlockDeviceException error)
    {
        RecordLatency(kind, started);
        return Failed(error);
    }

    /// <summary>Counts a failed request that is not block I/O (allocation status, prefetch): no latency.</summary>
    internal IserBlockd.BlockDev.BlockDeviceException Failed(IserBlockd.BlockDev.BlockDeviceException error)
    {
        var errno = (int)error.Error;
        Interlocked.Increment(ref _errors);
        Interlocked.Increment(ref _errorsByErrno[errno is >= 0 and <= MaxErrno ? errno : 0]);
        return error;
    }

    internal void End() => Interlocked.Decrement(ref _inFlight);

    private void RecordLatency(LunIoKind kind, long started)
    {
        var elapsed = Stopwatch.GetTimestamp() - started;
        Interlocked.Add(ref _latencyTicks[(int)kind], elapsed);
        _latency[(int)kind].Record(elapsed * 1_000_000 / Stopwatch.Frequency);
        var tags = _tags;
        if (tags.Length > 0 && DaemonMetrics.LunLatency.Enabled)
            DaemonMetrics.LunLatency.Record((double)elapsed / Stopwatch.Frequency, tags[(int)kind]);
    }

}
