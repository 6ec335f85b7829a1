using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma.Completion;

/// <summary>
/// Drains a completion queue in batches and hands each work completion to the handler its wr_id names in a
/// <see cref="WorkRequestTable"/>. After draining it re-arms the queue and polls once more, because a completion
/// that lands between the last empty poll and the re-arm raises no notification and would otherwise sit there
/// until the next unrelated one.
/// </summary>
public sealed class CompletionDispatcher : IReadableHandler, IDisposable
{
    private readonly ICompletionQueue _queue;
    private readonly WorkRequestTable _table;
    private readonly int _batchSize;
    private readonly object _drainGate = new();
    private IDisposable? _registration;
    private long _completions;
    private long _unknown;

    public CompletionDispatcher(ICompletionQueue queue, WorkRequestTable table, int batchSize = 16)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(batchSize, 256);
        _queue = queue;
        _table = table;
        _batchSize = batchSize;
    }

    /// <summary>Completions dispatched to a handler so far.</summary>
    public long Completions => Interlocked.Read(ref _completions);

    /// <summary>Completions whose wr_id named no registered handler (stale or foreign).</summary>
    public long UnknownCompletions => Interlocked.Read(ref _unknown);

    /// <summary>Raised for a completion whose wr_id names no handler (the completion is otherwise dropped).</summary>
    public event Action<IbvWc>? UnknownCompletion;

    /// <summary>Raised when a handler throws; the remaining completions of the batch are still dispatched.</summary>
    public event Action<IbvWc, Exception>? HandlerFailed;

    /// <summary>
    /// Raised (once) when the queue itself fails (poll or re-arm error, e.g. a CQ overrun): the dispatcher stops
    /// watching it, and its owner must tear the connection down.
    /// </summary>
    public event Action<Exception>? QueueFailed;

    /// <summary>Arms the queue and starts draining it on <paramref name="loop"/> whenever it signals.</summary>
    public void Start(RdmaEventLoop loop)
    {
        if (_registration != null) throw new InvalidOperationException("The dispatcher is already started.");
        _registration = loop.Register(_queue.NotificationFd, this, "completion channel");
        // Completions posted before the registration raised no event: drain them (this also arms the queue).
        DrainAndRearm();
    }

    void IReadableHandler.OnReadable()
    {
        try
        {
            _queue.ConsumeEvents();
            DrainAndRearm();
        }
        catch (RdmaException e)
        {
            _registration?.Dispose();
            _registration = null;
            QueueFailed?.Invoke(e);
        }
    }

    /// <summary>
    /// Polls until empty, re-arms, and polls again until a poll after re-arming finds nothing. Returns the count.
    /// Calls are serialized, so handlers never run on two threads at once.
    /// </summary>
    public int DrainAndRearm()
    {
        lock (_drainGate) return DrainAndRearmLocked();
    }

    private int DrainAndRearmLocked()
    {
        Span<IbvWc> batch = stackalloc IbvWc[_batchSize];
        var total = 0;
        while (true)
        {
            int n;
            do
            {
                n = _queue.Poll(batch);
                Dispatch(batch[..n]);
                total += n;
            } while (n == batch.Length);

            _queue.RequestNotification();

            n = _queue.Poll(batch);
            if (n == 0) return total;
            Dispatch(batch[..n]);
            total += n;
        }
    }

    private void Dispatch(ReadOnlySpan<IbvWc> completions)
    {
        foreach (ref readonly var wc in completions)
        {
            if (!_table.TryGetHandler(wc.WorkRequestId, out var handler))
            {
                Interlocked.Increment(ref _unknown);
                UnknownCompletion?.Invoke(wc);
                continue;
            }
            Interlocked.Increment(ref _completions);
            try
            {
                handler.OnWorkCompletion(in wc);
            }
            catch (Exception e)
            {
                HandlerFailed?.Invoke(wc, e);
            }
        }
    }

    /// <summary>Stops watching the queue; once this returns no handler runs from this dispatcher.</summary>
    public void Dispose()
    {
        _registration?.Dispose();
        _registration = null;
    }
}
