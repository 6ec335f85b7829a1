namespace IserBlockd.BlockDev.Kernel.Ublk;

/// <summary>How a block device is exposed as /dev/ublkbN.</summary>
public sealed record UblkDeviceOptions
{
    /// <summary>The device number to ask for (N of /dev/ublkbN); null for the first free one.</summary>
    public int? Id { get; init; }

    /// <summary>Hardware queues: each has a thread and an io_uring of its own. The kernel caps it at the CPU count.</summary>
    public int Queues { get; init; } = 1;

    /// <summary>Requests each queue holds at once (its tags), 1..4096.</summary>
    public int QueueDepth { get; init; } = 128;

    /// <summary>Names the backend (e.g. target IQN + LUN); a restarted server finds the device it left by it.</summary>
    public string? BackendIdentifier { get; init; }

    /// <summary>UBLK_F_USER_RECOVERY with REISSUE: the device outlives this process, holding I/O until a new one recovers it.</summary>
    public bool Recoverable { get; init; } = true;

    /// <summary>How long START_DEV, STOP_DEV, DEL_DEV and recovery may take.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(30);

    internal void Validate()
    {
        if (Queues < 1 || Queues > UblkCommands.MaxQueues) throw new ArgumentException($"ublk queues must be 1..{UblkCommands.MaxQueues}, not {Queues}");
        if (QueueDepth < 1 || QueueDepth > UblkCommands.MaxQueueDepth)
            throw new ArgumentException($"ublk queue depth must be 1..{UblkCommands.MaxQueueDepth}, not {QueueDepth}");
        if (Id is < 0) throw new ArgumentException($"ublk device number {Id} is negative");
    }

    /// <summary>The 64-bit tag kept in the device's ublksrv_flags (FNV-1a of the backend identifier; 0 without one).</summary>
    internal ulong BackendTag => BackendTagOf(BackendIdentifier);

    internal static ulong BackendTagOf(string? identifier)
    {
        if (string.IsNullOrEmpty(identifier)) return 0;
        var hash = 14695981039346656037ul;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(identifier))
        {
            hash ^= b;
            hash *= 1099511628211ul;
        }
        return hash | 1;   // never 0, which means "no backend"
    }
}
