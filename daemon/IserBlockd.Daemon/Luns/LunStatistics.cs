namespace IserBlockd.Daemon.Luns;

/// <summary>What went through one LUN, updated lock-free on the I/O path.</summary>
public sealed class LunStatistics
{
    private long _reads, _writes, _bytesRead, _bytesWritten, _flushes, _trims, _errors, _inFlight;

    public long Reads => Volatile.Read(ref _reads);
    public long Writes => Volatile.Read(ref _writes);
    public long BytesRead => Volatile.Read(ref _bytesRead);
    public long BytesWritten => Volatile.Read(ref _bytesWritten);
    public long Flushes => Volatile.Read(ref _flushes);
    public long Trims => Volatile.Read(ref _trims);
    public long Errors => Volatile.Read(ref _errors);
    public long InFlight => Volatile.Read(ref _inFlight);

    internal void Begin() => Interlocked.Increment(ref _inFlight);

    internal void End() => Interlocked.Decrement(ref _inFlight);

    internal void Read(int bytes)
    {
        Interlocked.Increment(ref _reads);
        Interlocked.Add(ref _bytesRead, bytes);
    }

    internal void Written(long bytes)
    {
        Interlocked.Increment(ref _writes);
        Interlocked.Add(ref _bytesWritten, bytes);
    }

    internal void Flushed() => Interlocked.Increment(ref _flushes);

    internal void Trimmed() => Interlocked.Increment(ref _trims);

    internal void Failed() => Interlocked.Increment(ref _errors);
}
