using IserBlockd.BlockDev.Buffers;
using IserBlockd.BlockDev.Nbd.Protocol;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// A named block device offered by an <see cref="NbdServer"/>. The empty name is the default export
/// (what a client gets when it names none).
/// </summary>
public sealed class NbdExport
{
    /// <summary>The default of <see cref="MaxConnections"/>: multi-connection clients open up to 4 (nbdcopy, the
    /// kernel's nbd-client default here), so 16 admits several of them at once, while one export's clients can pin
    /// at most 16 × <see cref="NbdServerOptions.MaxBytesInFlight"/>, and that is capped by <see cref="MaxBytesInFlight"/>.</summary>
    public const int DefaultMaxConnections = 16;

    /// <summary>The default of <see cref="MaxBytesInFlight"/>: a quarter of the daemon's 512 MiB payload pool (a
    /// smaller pool gives less: <see cref="BufferPoolShares.PerExport"/>).</summary>
    public const long DefaultMaxBytesInFlight = 128L << 20;

    private int _connections;
    private int _refusing;
    private ByteBudget? _budget;

    public NbdExport(string name, IBlockDevice device, string description = "", bool readOnly = false)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(description);
        NbdString.Validate(name, "export name");
        NbdString.Validate(description, "export description");
        Name = name;
        Description = description;
        Device = device;
        IsReadOnly = readOnly || (device.Features & BlockDeviceFeatures.ReadOnly) != 0;
        BlockSizes = NbdBlockSizeConstraints.FromGeometry(device.Geometry);
    }

    public string Name { get; }

    public string Description { get; }

    public IBlockDevice Device { get; }

    /// <summary>Writes, trims and write-zeroes are refused with EPERM.</summary>
    public bool IsReadOnly { get; }

    /// <summary>What NBD_INFO_BLOCK_SIZE advertises and the server enforces.</summary>
    public NbdBlockSizeConstraints BlockSizes { get; }

    /// <summary>Client connections allowed at once (NBD_OPT_GO beyond it gets NBD_REP_ERR_POLICY,
    /// NBD_OPT_EXPORT_NAME a disconnect). The kernel's sockets (<see cref="NbdServer.ServeTransmissionAsync(System.Net.Sockets.Socket, NbdExport, CancellationToken)"/>)
    /// are not counted.</summary>
    public int MaxConnections { get; init; } = DefaultMaxConnections;

    /// <summary>Payload bytes all client connections of this export may hold in buffers together; beyond it their
    /// readers wait. Kernel sockets are not counted. The budget is the smaller of this and the export's share of
    /// the pool its device rents from (<see cref="BufferPoolShares.PerExport"/>).</summary>
    public long MaxBytesInFlight { get; init; } = DefaultMaxBytesInFlight;

    internal ByteBudget Budget => Volatile.Read(ref _budget) ?? CreateBudget();

    private ByteBudget CreateBudget()
    {
        var limit = Device.Buffers.Shares is { } shares ? Math.Min(MaxBytesInFlight, shares.PerExport) : MaxBytesInFlight;
        Interlocked.CompareExchange(ref _budget, new ByteBudget(limit), null);
        return _budget!;
    }

    public int ActiveConnections => Volatile.Read(ref _connections);

    /// <summary>The transmission flags for this export. NBD_FLAG_SEND_DF only goes with structured replies.</summary>
    public NbdTransmissionFlags GetTransmissionFlags(bool structuredReplies)
    {
        var features = Device.Features;
        var flags = NbdTransmissionFlags.HasFlags;
        if ((features & BlockDeviceFeatures.Flush) != 0) flags |= NbdTransmissionFlags.SendFlush;
        if ((features & BlockDeviceFeatures.Rotational) != 0) flags |= NbdTransmissionFlags.Rotational;
        if ((features & BlockDeviceFeatures.MultiConnection) != 0) flags |= NbdTransmissionFlags.CanMultiConn;
        if (structuredReplies) flags |= NbdTransmissionFlags.SendDf;
        flags |= NbdTransmissionFlags.SendCache; // a prefetch hint; without device support it is answered at once
        if (IsReadOnly)
        {
            flags |= NbdTransmissionFlags.ReadOnly;
        }
        else
        {
            // FUA is emulated with a flush when the device only has a cache flush.
            if ((features & (BlockDeviceFeatures.Fua | BlockDeviceFeatures.Flush)) != 0) flags |= NbdTransmissionFlags.SendFua;
            if ((features & BlockDeviceFeatures.Trim) != 0) flags |= NbdTransmissionFlags.SendTrim;
            // Write-zeroes is always offered: without device support it is done with ordinary writes.
            flags |= NbdTransmissionFlags.SendWriteZeroes;
            // FAST_ZERO: refused at once (ENOTSUP) where zeroing would fall back to writing zeroes.
            flags |= NbdTransmissionFlags.SendFastZero;
        }
        return flags;
    }

    /// <param name="firstRefusal">Refused, and the first refusal since the export was last below its limit
    /// (so the log says it once, not once per client retry).</param>
    internal bool TryAcquireConnection(out bool firstRefusal)
    {
        firstRefusal = false;
        while (true)
        {
            var current = Volatile.Read(ref _connections);
            if (current >= MaxConnections)
            {
                firstRefusal = Interlocked.Exchange(ref _refusing, 1) == 0;
                return false;
            }
            if (Interlocked.CompareExchange(ref _connections, current + 1, current) == current) return true;
        }
    }

    internal void ReleaseConnection()
    {
        Interlocked.Decrement(ref _connections);
        Volatile.Write(ref _refusing, 0);
    }

    public override string ToString() => Name.Length == 0 ? "(default export)" : Name;
}
