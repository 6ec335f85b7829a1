using System.Diagnostics;
using System.Runtime.InteropServices;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Primitives.Polling;

/// <summary>What the I/O thread is about to wait for when it asks <see cref="LowDepthPoller.BeforeIdle"/>.</summary>
public enum LowDepthWait
{
    /// <summary>The one command in flight was sent: its answer comes from the target.</summary>
    Answer,
    /// <summary>The last reply was sent and nothing is in flight: the client's next request.</summary>
    NextRequest,
}

/// <summary>
/// At queue depth one a request's latency is mostly wake-ups: the client wakes the daemon, the daemon the target, the
/// target the daemon, the daemon the client, each an idle CPU brought back and a switch between processes. When the
/// daemon has at most one I/O in flight and its I/O thread would go idle, this polls the sockets that I/O waits on
/// (every iSCSI TCP connection and NBD socket that registered with <see cref="Watch"/>) for up to a budget instead,
/// so that the answer or the next request finds the thread awake. With two or more I/Os in flight it never polls (the
/// thread has work, and the wake-ups are shared by many I/Os).
/// <para>The price is CPU: the thread stays busy for the wait it covers. A wait that outlasts the budget was polled
/// for nothing (the thread then sleeps as before), so each kind of wait backs off after misses (it skips the next 1,
/// 3, 7 … up to 1023 chances) and comes back after one hit: a client that pauses between requests is not polled for,
/// while the target's answers, which come within the budget, still are.</para>
/// <para>Between two polls the thread yields its CPU (sched_yield): a socket's wake-up puts the sleeper it wakes on
/// the waker's CPU when the other CPU is busy, so the peer polled for may be queued on this very CPU, and spinning
/// ahead of it would make the poll run out for an answer it was itself holding up.</para>
/// </summary>
public sealed unsafe class LowDepthPoller
{
    /// <summary>Never polls.</summary>
    public static readonly LowDepthPoller Off = new(TimeSpan.Zero);

    /// <summary>More sockets than this and the daemon is not at queue depth one in any sense that pays.</summary>
    private const int MaxWatched = 64;
    private const int MaxSkip = 1023;

    private readonly long _budgetTicks;
    private readonly object _lock = new();
    private int[] _fds = [];
    private int _inFlight;
    private readonly Backoff[] _backoff = new Backoff[2];
    private long _hits, _misses;

    public LowDepthPoller(TimeSpan budget)
    {
        if (budget < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(budget));
        Budget = budget;
        _budgetTicks = (long)(budget.TotalSeconds * Stopwatch.Frequency);
    }

    public TimeSpan Budget { get; }

    public bool Enabled => _budgetTicks > 0;

    /// <summary>I/Os in flight in the daemon (as counted by <see cref="Started"/> and <see cref="Finished"/>).</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Polls that ended because a socket became readable, and polls that ran out their budget.</summary>
    public long Hits => Interlocked.Read(ref _hits);
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>A request is in flight (a poller that never polls does not count).</summary>
    public void Started()
    {
        if (_budgetTicks != 0) Interlocked.Increment(ref _inFlight);
    }

    public void Finished()
    {
        if (_budgetTicks != 0) Interlocked.Decrement(ref _inFlight);
    }

    /// <summary>Adds <paramref name="socket"/> to the descriptors polled until the returned registration is disposed
    /// (a descriptor closed meanwhile only ends a poll early: poll(2) reports it invalid).</summary>
    public IDisposable Watch(SafeHandle socket)
    {
        if (!Enabled) return NoRegistration.Instance;
        var fd = (int)socket.DangerousGetHandle();
        lock (_lock) _fds = [.. _fds, fd];
        return new Registration(this, fd);
    }

    /// <summary>Called on the I/O thread right before it would wait for <paramref name="wait"/>: with at most one I/O
    /// in flight, polls the watched sockets until one is readable or the budget is spent.</summary>
    public void BeforeIdle(LowDepthWait wait)
    {
        if (_budgetTicks == 0 || Volatile.Read(ref _inFlight) > 1) return;
        ref var backoff = ref _backoff[(int)wait];
        if (backoff.Skip > 0)
        {
            backoff.Skip--;
            return;
        }
        var fds = Volatile.Read(ref _fds);
        if (fds.Length == 0 || fds.Length > MaxWatched) return;
        var polled = stackalloc LibC.PollFd[fds.Length];
        for (var i = 0; i < fds.Length; i++) polled[i] = new LibC.PollFd { Fd = fds[i], Events = LibC.POLLIN };
        var end = Stopwatch.GetTimestamp() + _budgetTicks;
        do
        {
            if (LibC.poll(polled, (nuint)fds.Length, 0) != 0)
            {
                // Readable, closed, or poll itself failing: in every case the thread should not sleep on a guess.
                backoff.Misses = 0;
                Interlocked.Increment(ref _hits);
                return;
            }
            // The peer polled for may be queued on this CPU (see the summary); sched_yield returns at once if nothing is.
            Thread.Yield();
        } while (Stopwatch.GetTimestamp() < end);
        backoff.Misses = Math.Min(backoff.Misses + 1, 10);
        backoff.Skip = Math.Min((1 << backoff.Misses) - 1, MaxSkip);
        Interlocked.Increment(ref _misses);
    }

    private void Remove(int fd)
    {
        lock (_lock)
        {
            var at = Array.IndexOf(_fds, fd);
            if (at >= 0) _fds = [.. _fds.AsSpan(0, at), .. _fds.AsSpan(at + 1)];
        }
    }

    /// <summary>One kind of wait's misses in a row and the chances it still skips; touched by the I/O thread only
    /// (a race between two I/O threads costs at most one poll more or less).</summary>
    private struct Backoff
    {
        public int Misses;
        public int Skip;
    }

    private sealed class Registration(LowDepthPoller poller, int fd) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) poller.Remove(fd);
        }
    }

    private sealed class NoRegistration : IDisposable
    {
        public static readonly NoRegistration Instance = new();
        public void Dispose() { }
    }
}
