using IserBlockd.BlockDev.Kernel.Nbd;

namespace IserBlockd.BlockDev.Kernel;

/// <summary>What to attach as /dev/nbdN: geometry, capabilities, connections and timeouts.</summary>
/// <remarks>
/// Restart survival (read drivers/block/nbd.c): a device stays configured when its server process dies;
/// the kernel marks the connections dead, keeps the queue, and waits <see cref="DeadConnectionTimeout"/>
/// for NBD_CMD_RECONFIGURE with new sockets before it fails requests with EIO. Requests that were
/// in flight on a dead socket are requeued when their <see cref="IoTimeout"/> fires, so with a non-zero
/// timeout nothing is lost across a restart, only delayed. A timeout of zero disables the kernel's
/// timeout handling; on 6.1 such in-flight requests would then never be resent, so it is not the default.
/// <see cref="NbdDeviceClientFlags.DestroyOnDisconnect"/> only matters after an explicit disconnect (the
/// device node goes away when it is also closed), so it does not stand in the way of a restart, and it
/// keeps devices created by auto index from piling up; DISCONNECT_ON_CLOSE is never set (an unmount
/// would end the device).
/// </remarks>
public sealed record KernelAttachRequest
{
    /// <summary>nbdN to use; null for the first free device (netlink) or the first unused one (ioctl).</summary>
    public uint? Index { get; init; }

    public required long Size { get; init; }

    /// <summary>The LUN's real logical block size (512 or 4096); the kernel takes 512..page size.</summary>
    public required int LogicalBlockSize { get; init; }

    public BlockDeviceFeatures Features { get; init; }

    /// <summary>Sockets (connections) the kernel spreads requests over; more than one needs
    /// <see cref="BlockDeviceFeatures.MultiConnection"/>.</summary>
    public int Connections { get; init; } = 1;

    /// <summary>When the kernel gives up on one request and resends it (on another or a reconfigured
    /// connection). Set above the daemon's own replacement timeout so the kernel never acts first.</summary>
    public TimeSpan IoTimeout { get; init; } = TimeSpan.FromSeconds(180);

    /// <summary>How long requests wait for a RECONFIGURE once every connection is dead (a daemon restart).</summary>
    public TimeSpan DeadConnectionTimeout { get; init; } = TimeSpan.FromSeconds(180);

    public bool DestroyOnDisconnect { get; init; } = true;

    /// <summary>Names the backend (e.g. target IQN + LUN); the kernel refuses a RECONFIGURE that names another.</summary>
    public string? BackendIdentifier { get; init; }

    public KernelAttachMethod Method { get; init; } = KernelAttachMethod.Auto;

    /// <summary>When the kernel reports a connection dead (NBD_CMD_LINK_DEAD: it timed a request out and
    /// shut the socket, or the socket failed), hand it a new one with NBD_CMD_RECONFIGURE so requests
    /// it requeued go on. Netlink only. This lets <see cref="IoTimeout"/> be short (a quick resend after a
    /// restart) without a slow backend ever surfacing as an error.</summary>
    public bool ReplaceDeadConnections { get; init; }

    /// <summary>A request for <paramref name="device"/>'s geometry and features.</summary>
    public static KernelAttachRequest For(IBlockDevice device) => new()
    {
        Size = device.Geometry.Size,
        LogicalBlockSize = device.Geometry.LogicalBlockSize,
        Features = device.Features,
    };

    internal void Validate()
    {
        if (LogicalBlockSize < 512 || LogicalBlockSize > Environment.SystemPageSize || (LogicalBlockSize & (LogicalBlockSize - 1)) != 0)
            throw new ArgumentException($"logical block size {LogicalBlockSize} is not a power of two between 512 and the page size ({Environment.SystemPageSize})");
        if (Size <= 0 || Size % LogicalBlockSize != 0)
            throw new ArgumentException($"size {Size} is not a positive multiple of the logical block size {LogicalBlockSize}");
        if (Connections < 1) throw new ArgumentException("at least one connection is needed");
        if (Connections > 1 && !Features.HasFlag(BlockDeviceFeatures.MultiConnection))
            throw new ArgumentException($"{Connections} connections need a device that allows several (MultiConnection)");
        if (IoTimeout < TimeSpan.Zero || DeadConnectionTimeout < TimeSpan.Zero)
            throw new ArgumentException("timeouts cannot be negative");
    }

    /// <summary>The NBD transmission flags the kernel should assume (it never negotiates; we tell it).</summary>
    public ulong TransmissionFlags => KernelTransmissionFlags.From(Features);

    internal NbdDeviceConfiguration ToConfiguration(uint? index) => new()
    {
        Index = index,
        SizeBytes = (ulong)Size,
        BlockSizeBytes = (ulong)LogicalBlockSize,
        TimeoutSeconds = (ulong)Math.Ceiling(IoTimeout.TotalSeconds),
        ServerFlags = TransmissionFlags,
        ClientFlags = DestroyOnDisconnect ? NbdDeviceClientFlags.DestroyOnDisconnect : NbdDeviceClientFlags.None,
        DeadConnectionTimeoutSeconds = (ulong)Math.Ceiling(DeadConnectionTimeout.TotalSeconds),
        BackendIdentifier = BackendIdentifier,
    };
}
