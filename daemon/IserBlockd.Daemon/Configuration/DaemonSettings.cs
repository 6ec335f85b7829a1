using IserBlockd.BlockDev.Kernel;
using IserBlockd.Transport.Iser;

namespace IserBlockd.Daemon.Configuration;

/// <summary>The validated configuration, with every default applied and CHAP secrets loaded.</summary>
public sealed record DaemonSettings(
    string? InitiatorName,
    TimeSpan ReplacementTimeout,
    TimeSpan NopInterval,
    TimeSpan NopTimeout,
    TimeSpan LoginTimeout,
    TimeSpan KernelNbdTimeout,
    ReconnectPolicy Reconnect,
    LoggingSettings Logging,
    string ControlSocket,
    IReadOnlyList<NodeSettings> Nodes)
{
    public const string DefaultConfigPath = "/etc/iserblockd/iserblockd.json";
    public const string DefaultControlSocket = "/run/iserblockd/control";
    public static readonly TimeSpan DefaultReplacementTimeout = TimeSpan.FromSeconds(120);
    public static readonly TimeSpan DefaultNopInterval = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan DefaultNopTimeout = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan DefaultLoginTimeout = TimeSpan.FromSeconds(15);

    /// <summary>How far the kernel NBD timeout is set above the replacement timeout when the file does
    /// not say, so that the kernel never gives up on a request before the daemon does.</summary>
    public static readonly TimeSpan KernelTimeoutMargin = TimeSpan.FromSeconds(30);

    /// <summary>Settings with nothing configured: what <c>iserblockd export</c> starts from.</summary>
    public static DaemonSettings Defaults { get; } = new(
        null, DefaultReplacementTimeout, DefaultNopInterval, DefaultNopTimeout, DefaultLoginTimeout,
        DefaultKernelNbdTimeout(DefaultReplacementTimeout, DefaultCommandTimeout), ReconnectPolicy.Default, LoggingSettings.Default,
        DefaultControlSocket, []);

    /// <summary>How long a sent SCSI command may go unanswered before it is aborted (then LU reset, then reinstatement).</summary>
    public TimeSpan CommandTimeout { get; init; } = DefaultCommandTimeout;

    public static readonly TimeSpan DefaultCommandTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The default kernel NBD timeout: above the replacement timeout plus the whole escalation of a command timeout
    /// (abort, LU reset, re-issues), so that the kernel never resubmits a request that might still run on the target.
    /// </summary>
    public static TimeSpan DefaultKernelNbdTimeout(TimeSpan replacement, TimeSpan commandTimeout)
        => replacement + new Iscsi.Sessions.IscsiSessionOptions { Portals = [], InitiatorName = "", CommandTimeout = commandTimeout }.WorstCaseCommandTime + KernelTimeoutMargin;

    /// <summary>Sockets the kernel spreads the requests of each /dev/nbdN over (as nbd-client -connections).</summary>
    public int KernelNbdConnections { get; init; } = DefaultKernelNbdConnections;

    /// <summary>Requests each hardware queue of a /dev/ublkbN holds (ublksrv's -d); the session's command window
    /// still bounds what reaches the target.</summary>
    public int UblkQueueDepth { get; init; } = DefaultUblkQueueDepth;

    public const int DefaultUblkQueueDepth = 128;

    /// <summary>The kernel's limit (UBLK_MAX_QUEUE_DEPTH).</summary>
    public const int MaxUblkQueueDepth = 4096;

    /// <summary>How /dev/nbdN devices are attached: netlink where the kernel has it, or the legacy ioctls (as nbd-client -nonetlink).</summary>
    public KernelAttachMethod KernelNbdMethod { get; init; } = KernelAttachMethod.Auto;

    /// <summary>READ data of <see cref="BlockDev.Nbd.NbdServerOptions.SendPagesThreshold"/> or more passes to NBD clients
    /// without a copy in the daemon: spliced from the target's TCP socket, or on a Unix socket by page reference
    /// (<c>zeroCopyReads</c>). False copies it through the daemon, as before 2026-12-05: the way out should a kernel's
    /// splice misbehave.</summary>
    public bool ZeroCopyReads { get; init; } = true;

    /// <summary>How long the I/O thread polls the daemon's sockets instead of sleeping when at most one request is in
    /// flight in the whole daemon (<c>lowDepthPollMicroseconds</c>; 0: never). Queue depth one otherwise pays a
    /// wake-up per hop (<see cref="Primitives.Polling.LowDepthPoller"/>).</summary>
    public int LowDepthPollMicroseconds { get; init; } = DefaultLowDepthPollMicroseconds;

    public const int DefaultLowDepthPollMicroseconds = 100;
    public const int MaxLowDepthPollMicroseconds = 10_000;

    /// <summary>Why <paramref name="microseconds"/> cannot be <see cref="LowDepthPollMicroseconds"/>; null if it can.</summary>
    public static string? LowDepthPollProblem(int microseconds) => microseconds is < 0 or > MaxLowDepthPollMicroseconds
        ? $"expected 0 (off) to {MaxLowDepthPollMicroseconds}, got {microseconds}"
        : null;

    /// <summary>The NBD server options these settings ask for, with a new poller (<see cref="LowDepthPollMicroseconds"/>):
    /// one call per daemon, whose servers and iSCSI connections share it.</summary>
    public BlockDev.Nbd.NbdServerOptions ServerOptions()
    {
        var options = new BlockDev.Nbd.NbdServerOptions
        {
            LowDepthPoller = LowDepthPollMicroseconds > 0
                ? new Primitives.Polling.LowDepthPoller(TimeSpan.FromMicroseconds(LowDepthPollMicroseconds))
                : Primitives.Polling.LowDepthPoller.Off,
        };
        return ZeroCopyReads ? options : options with { SendPagesThreshold = 0 };
    }

    /// <summary>Registered (pinned) memory per RDMA device for iSER sessions: the zero-copy data buffers and the bounce buffers.</summary>
    public IserDeviceOptions IserBuffers { get; init; } = new();

    /// <summary>Where the Prometheus text endpoint listens (<c>metrics.listen</c>); null: no endpoint.</summary>
    public HostPort? MetricsListen { get; init; }

    /// <summary>One socket per CPU, up to 4: more sockets than CPUs only add contention in the daemon.</summary>
    public static int DefaultKernelNbdConnections => Math.Clamp(Environment.ProcessorCount, 1, 4);

    public const int MaxKernelNbdConnections = 16;

    public NodeSettings? FindNode(string name) => Nodes.FirstOrDefault(n => n.Name == name);
}
