namespace IserBlockd.Rdma.Completion;

/// <summary>
/// Maps work request ids to their handlers. An id is the slot index in the low 32 bits and a generation in the
/// high 32 bits, so a completion that arrives after its slot was reused (a flush after teardown, say) is recognised
/// as stale instead of reaching the new owner. Handlers are registered once per long-lived descriptor (a receive
/// buffer, a send slot) and reused for every post: the I/O path does not touch the table's lock.
/// </summary>
public sealed class WorkRequestTable
{
    private readonly Entry?[] _entries;
    private readonly int[] _free;
    private int _freeCount;
    private uint _generation;
    private readonly object _gate = new();

    public WorkRequestTable(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _entries = new Entry?[capacity];
        _free = new int[capacity];
        for (var i = 0; i < capacity; i++) _free[i] = capacity - 1 - i;
        _freeCount = capacity;
    }

    public int Capacity => _entries.Length;

    public int Count
    {
        get { lock (_gate) return _entries.Length - _freeCount; }
    }

    /// <summary>Registers <paramref name="handler"/> and returns the work request id to post with.</summary>
    public ulong Add(IWorkCompletionHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_gate)
        {
            if (_freeCount == 0)
                throw new InvalidOperationException($"All {_entries.Length} work request slots are in use.");
            var slot = _free[--_freeCount];
            var generation = ++_generation;
            if (generation == 0) generation = ++_generation; // id 0 never names a handler
            var id = ((ulong)generation << 32) | (uint)slot;
            Volatile.Write(ref _entries[slot], new Entry(handler, id));
            return id;
        }
    }

    /// <summary>Unregisters an id; later completions carrying it are reported as unknown. False if it was not registered.</summary>
    public bool Remove(ulong workRequestId)
    {
        var slot = (int)(uint)workRequestId;
        lock (_gate)
        {
            if (slot >= _entries.Length || _entries[slot]?.Id != workRequestId) return false;
            Volatile.Write(ref _entries[slot], null);
            _free[_freeCount++] = slot;
            return true;
        }
    }

    /// <summary>Finds the handler of a completion's id (lock-free: one array read and a compare).</summary>
    public bool TryGetHandler(ulong workRequestId, out IWorkCompletionHandler handler)
    {
        var slot = (uint)workRequestId;
        var entry = slot < (uint)_entries.Length ? Volatile.Read(ref _entries[slot]) : null;
        if (entry != null && entry.Id == workRequestId)
        {
            handler = entry.Handler;
            return true;
        }
        handler = null!;
        return false;
    }

    private sealed class Entry(IWorkCompletionHandler handler, ulong id)
    {
        public IWorkCompletionHandler Handler { get; } = handler;
        public ulong Id { get; } = id;
    }
}
