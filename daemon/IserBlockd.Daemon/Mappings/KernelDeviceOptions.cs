using IserBlockd.Daemon.Configuration;
using IserBlockd.BlockDev.Kernel;

namespace IserBlockd.Daemon.Mappings;

/// <summary>How a LUN is attached as /dev/nbdN.</summary>
/// <param name="IoTimeout">The kernel's per-request timeout. It must exceed the longest time the daemon holds a
/// request (the replacement timeout): when it fires the kernel drops that connection and sends the request again,
/// so a shorter one would put a second copy of a write next to the one the daemon still holds for the target.</param>
/// <param name="BackendIdentifier">Names the LUN to the kernel (/sys/block/nbdN/backend); a restarted daemon finds its devices by it.</param>
/// <param name="Connections">Sockets the kernel spreads requests over (more than one needs a multi-connection device).</param>
public sealed record KernelDeviceOptions(TimeSpan IoTimeout, string BackendIdentifier, int Connections)
{
    /// <summary>How long the kernel keeps requests once every connection is dead (the daemon crashed or is being
    /// restarted) before failing them; null: <see cref="IoTimeout"/>, which is above the replacement timeout.</summary>
    public TimeSpan? DeadConnectionTimeout { get; init; }

    /// <summary>Requests each queue of a ublk device holds.</summary>
    public int UblkQueueDepth { get; init; } = DaemonSettings.DefaultUblkQueueDepth;

    /// <summary>Netlink where the kernel has it (needed to survive a daemon restart), or the legacy ioctls.</summary>
    public KernelAttachMethod Method { get; init; } = KernelAttachMethod.Auto;

    /// <summary>When the kernel declares a connection dead while the daemon runs (it timed a request out, or a
    /// send failed), hand it a new socket at once (NBD_CMD_RECONFIGURE) so the requests it requeued go on, instead
    /// of leaving the device without a server until its dead-connection timeout fails them. Netlink only.</summary>
    public bool ReplaceDeadConnections { get; init; } = true;

    /// <summary>The <see cref="BackendIdentifier"/> of LUN <paramref name="lun"/> of <paramref name="target"/>: the same
    /// for the daemon and <c>iserblockd export</c>, so that either finds a device the other left configured.</summary>
    public static string BackendIdentifierFor(string target, int lun) =>
        $"iserblockd:{target}:{lun.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
}
