namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// Maps Initiator Task Tags to SCSI tasks. An ITT is slot | generation &lt;&lt; 16 with bit 31 clear (control
/// requests use bit 31), so a late PDU for a reused slot does not match the new task.
/// </summary>
internal sealed class TaskTable
{
    private readonly ScsiTask?[] _slots;
    private readonly ushort[] _generations;
    private readonly int[] _free;
    private int _freeCount;

    public TaskTable(int capacity)
    {
        if (capacity is < 1 or > 65536) throw new ArgumentOutOfRangeException(nameof(capacity));
        _slots = new ScsiTask?[capacity];
        _generations = new ushort[capacity];
        _free = new int[capacity];
        for (var i = 0; i < capacity; i++) _free[i] = capacity - 1 - i;
        _freeCount = capacity;
    }

    public int Count => _slots.Length - _freeCount;

    public int Capacity => _slots.Length;

    public bool TryAdd(ScsiTask task)
    {
        if (_freeCount == 0) return false;
        var slot = _free[--_freeCount];
        var generation = _generations[slot] = (ushort)((_generations[slot] + 1) & 0x7fff);
        _slots[slot] = task;
        task.Itt = (uint)slot | (uint)generation << 16;
        return true;
    }

    public ScsiTask? Find(uint itt)
    {
        if ((itt & 0x8000_0000) != 0) return null;
        var slot = (int)(itt & 0xffff);
        if (slot >= _slots.Length) return null;
        var task = _slots[slot];
        return task != null && task.Itt == itt ? task : null;
    }

    public void Remove(ScsiTask task)
    {
        var slot = (int)(task.Itt & 0xffff);
        if (slot < _slots.Length && ReferenceEquals(_slots[slot], task))
        {
            _slots[slot] = null;
            _free[_freeCount++] = slot;
        }
    }

    public List<ScsiTask> Snapshot()
    {
        var list = new List<ScsiTask>(Count);
        foreach (var t in _slots) if (t != null) list.Add(t);
        return list;
    }
}
