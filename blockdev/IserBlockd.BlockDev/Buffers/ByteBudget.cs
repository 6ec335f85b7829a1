using IserBlockd.Primitives.Async;

namespace IserBlockd.BlockDev.Buffers;

/// <summary>
/// A count of bytes that may be held at once, handed out first come, first served: the pinned buffer pool's
/// limit, an export's share of it, or the share of every NBD client of a daemon in a pool that kernel devices use
/// too. Acquiring beyond it waits until holders release: one client that stops reading its replies can pin at
/// most its budget, and never the whole pool.
/// </summary>
/// <remarks>A request larger than the whole budget is charged the whole budget, so it waits until it is alone
/// rather than forever. Uncontended acquires and releases are one interlocked add; waiters allocate (only under
/// contention, which a well-sized budget does not see in steady state).</remarks>
public sealed class ByteBudget
{
    private readonly Queue<Waiter> _waiters = new();
    private long _used;
    private int _waiterCount;

    public ByteBudget(long capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
    }

    public long Capacity { get; }

    /// <summary>Bytes held now.</summary>
    public long Used => Volatile.Read(ref _used);

    /// <summary>What acquiring <paramref name="bytes"/> actually charges (and what must be released).</summary>
    public long Charge(long bytes) => Math.Min(bytes, Capacity);

    /// <summary>Waits until <see cref="Charge"/>(<paramref name="bytes"/>) fits; cancelled waits hold nothing.</summary>
    public ValueTask AcquireAsync(long bytes, CancellationToken cancellationToken)
    {
        bytes = Charge(bytes);
        if (Volatile.Read(ref _waiterCount) == 0 && TryReserve(bytes)) return ValueTask.CompletedTask;
        return AcquireSlowAsync(bytes, cancellationToken);
    }

    private async ValueTask AcquireSlowAsync(long bytes, CancellationToken cancellationToken)
    {
        Waiter waiter;
        lock (_waiters)
        {
            Interlocked.Increment(ref _waiterCount);
            if (_waiters.Count == 0 && TryReserve(bytes))
            {
                Interlocked.Decrement(ref _waiterCount);
                return;
            }
            waiter = new Waiter(bytes);
            _waiters.Enqueue(waiter);
        }
        try
        {
            await waiter.WaitCompletionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            lock (_waiters)
            {
                // Granted as it was cancelled: the releaser saw the cancellation and took the grant back.
                if (!waiter.Granted) waiter.Abandoned = true;
            }
            throw;
        }
    }

    /// <summary>Gives back what an acquire of <paramref name="bytes"/> charged.</summary>
    public void Release(long bytes)
    {
        Interlocked.Add(ref _used, -Charge(bytes));
        if (Volatile.Read(ref _waiterCount) == 0) return;
        lock (_waiters)
        {
            while (_waiters.TryPeek(out var head))
            {
                if (head.Abandoned)
                {
                    _waiters.Dequeue();
                    Interlocked.Decrement(ref _waiterCount);
                    continue;
                }
                if (!TryReserve(head.Bytes)) break;
                _waiters.Dequeue();
                Interlocked.Decrement(ref _waiterCount);
                head.Granted = true;
                if (!head.TrySetResult(true))
                    Interlocked.Add(ref _used, -head.Bytes); // cancelled meanwhile
            }
        }
    }

    private bool TryReserve(long bytes)
    {
        if (Interlocked.Add(ref _used, bytes) <= Capacity) return true;
        Interlocked.Add(ref _used, -bytes);
        return false;
    }

    /// <summary>One queued acquire: granted (a result) or cancelled, whichever comes first. The acquirer continues on
    /// the thread pool, never inside the releaser's lock.</summary>
    private sealed class Waiter(long bytes) : ResettableCompletionSource<bool>(runContinuationsAsynchronously: true)
    {
        public readonly long Bytes = bytes;
        public bool Granted;
        public bool Abandoned;
    }
}
