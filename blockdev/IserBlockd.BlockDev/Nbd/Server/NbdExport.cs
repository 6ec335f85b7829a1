using IserBlockd.BlockDev.Nbd.Protocol;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// A named block device offered by an <see cref="NbdServer"/>. The empty name is the default export
/// (what a client gets when it names none).
/// </summary>
public sealed class NbdExport
{
    private int _connections;

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

    /// <summary>Connections allowed at once (NBD_OPT_GO beyond it gets NBD_REP_ERR_POLICY).</summary>
    public int MaxConnections { get; init; } = int.MaxValue;

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

    internal bool TryAcquireConnection()
    {
        while (true)
        {
            var current = Volatile.Read(ref _connections);
            if (current >= MaxConnections) return false;
            if (Interlocked.CompareExchange(ref _connections, current + 1, current) == current) return true;
        }
    }

    internal void ReleaseConnection() => Interlocked.Decrement(ref _connections);

    public override string ToString() => Name.Length == 0 ? "(default export)" : Name;
}
