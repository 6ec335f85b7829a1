using System.Diagnostics;

namespace IserBlockd.Transport.Tcp;

/// <summary>
/// Ends receive holds (<see cref="ReceiveCoalescing"/>) that outlive their window. One thread for the whole process
/// sleeps until the earliest deadline of the holds in place and goes idle (no deadline at all) when none is.
/// <para>Why not a <see cref="Timer"/>: at a high queue depth a new hold starts every few answers, so a timer bounding
/// them is always armed; each firing wakes the runtime's timer thread, which wakes a thread-pool worker to run the
/// callback, which re-arms it (and so wakes the timer thread again). That was about 600 thread wake-ups a second on a
/// busy connection, 2-3 % of the daemon's CPU per 4 KiB I/O on a hypervisor where waking a thread is dear. This thread
/// wakes about once per window while holds keep coming, and not at all otherwise.</para>
/// </summary>
internal sealed class HoldDeadlineWatch
{
    public static readonly HoldDeadlineWatch Shared = new();

    private readonly object _gate = new();
    /// <summary>The connections watched; replaced, never changed, so the thread scans it without the lock.</summary>
    private ReceiveCoalescing[] _watched = [];
    private Thread? _thread;
    /// <summary>Stopwatch timestamp the thread waits until (<see cref="long.MaxValue"/>: idle, or scanning).</summary>
    private long _nextWake = long.MaxValue;

    /// <summary>Wake-ups of the thread so far (for tests).</summary>
    public long WakeUps => Interlocked.Read(ref _wakeUps);
    private long _wakeUps;

    /// <summary>A connection that may hold: watched until <see cref="Forget"/> (a scan of one that holds nothing costs
    /// a lock and a comparison).</summary>
    public void Watch(ReceiveCoalescing coalescing)
    {
        lock (_gate)
        {
            _watched = [.. _watched, coalescing];
        }
    }

    /// <summary>The connection is disposed: no longer watched.</summary>
    public void Forget(ReceiveCoalescing coalescing)
    {
        lock (_gate)
        {
            var at = Array.IndexOf(_watched, coalescing);
            if (at >= 0) _watched = [.. _watched.AsSpan(0, at), .. _watched.AsSpan(at + 1)];
        }
    }

    public bool Watches(ReceiveCoalescing coalescing)
    {
        return Array.IndexOf(Volatile.Read(ref _watched), coalescing) >= 0;
    }

    /// <summary>A hold that must end by <paramref name="deadline"/> started on a watched connection. The thread is woken
    /// only if it would otherwise wake later than that: while holds keep coming each new one's deadline is later than
    /// the wake-up already planned, which sees it. Not called under the coalescing's lock (the thread takes that lock
    /// under its own).</summary>
    public void HoldStarted(long deadline)
    {
        // The hold was set (under the coalescing's lock) before this read, which must not move ahead of it: the thread
        // writes its plan, then scans; this side sets the hold, then reads the plan; one of them sees the other.
        Interlocked.MemoryBarrier();
        if (deadline >= Volatile.Read(ref _nextWake)) return;
        lock (_gate)
        {
            if (_thread == null)
            {
                _thread = new Thread(Run) { IsBackground = true, Name = "iSCSI receive holds" };
                _thread.Start();
            }
            Monitor.Pulse(_gate);
        }
    }

    private void Run()
    {
        lock (_gate)
        {
            while (true)
            {
                Interlocked.Increment(ref _wakeUps);
                // A hold that starts during the scan and is missed by it sees "no wake-up planned" and wakes the thread.
                Volatile.Write(ref _nextWake, long.MaxValue);
                var now = Stopwatch.GetTimestamp();
                var next = long.MaxValue;
                foreach (var coalescing in _watched) next = Math.Min(next, coalescing.EndIfOverdue(now));
                Volatile.Write(ref _nextWake, next);
                if (next == long.MaxValue)
                {
                    Monitor.Wait(_gate);
                }
                else
                {
                    // Rounded up: waking before the deadline would only find the hold young and wait again.
                    var milliseconds = ((next - now) * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency;
                    Monitor.Wait(_gate, (int)Math.Min(milliseconds, int.MaxValue));
                }
            }
        }
    }
}
