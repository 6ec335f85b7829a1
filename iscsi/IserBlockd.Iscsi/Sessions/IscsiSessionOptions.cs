using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Security;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>Everything needed to log in to a target and run a session.</summary>
public sealed record IscsiSessionOptions
{
    /// <summary>Portals to try in order; redirections are followed from each.</summary>
    public required IReadOnlyList<IscsiPortal> Portals { get; init; }

    /// <summary>The target IQN; null for discovery sessions.</summary>
    public string? TargetName { get; init; }

    public required string InitiatorName { get; init; }

    public string? InitiatorAlias { get; init; }

    public IscsiSessionType SessionType { get; init; } = IscsiSessionType.Normal;

    /// <summary>The session's ISID; kept across reinstatement so that the target replaces the old session.</summary>
    public Isid Isid { get; init; } = Isid.CreateRandom();

    /// <summary>Our CHAP credentials (the target authenticates us).</summary>
    public ChapCredentials? Chap { get; init; }

    /// <summary>The target's CHAP credentials for mutual CHAP.</summary>
    public ChapCredentials? TargetChap { get; init; }

    /// <summary>CHAP_A offer in order of preference. Default MD5 only, as open-iscsi (tgt misnumbers SHA-1 as 7).</summary>
    public IReadOnlyList<ChapAlgorithm> ChapAlgorithms { get; init; } = [ChapAlgorithm.Md5];

    public OperationalOptions Operational { get; init; } = new();

    /// <summary>Time for TCP connect plus login on one portal (open-iscsi: login_timeout = 15).</summary>
    public TimeSpan LoginTimeout { get; init; } = TimeSpan.FromSeconds(15);

    public int MaxRedirects { get; init; } = 5;

    /// <summary>Told when the receive loop handles a burst of PDUs (see <see cref="IReceiveBurstObserver"/>); none by default.</summary>
    public IReceiveBurstObserver? ReceiveBursts { get; init; }

    /// <summary>
    /// When the connection is lost, keep outstanding commands (with their buffers) and queue new ones until
    /// <see cref="IscsiSession.ReinstateAsync"/> re-issues them, or <see cref="IscsiSession.FailOutstandingCommands"/>
    /// gives up. When false, they fail at once with <see cref="IscsiConnectionLostException"/>.
    /// </summary>
    public bool RetainCommandsOnConnectionLoss { get; init; }

    /// <summary>
    /// How long a sent command may go unanswered before it is aborted (ABORT TASK, then LOGICAL UNIT RESET, then a
    /// new connection); also how long BUSY, TASK SET FULL and "becoming ready" are retried. Linux sd: 30 s.
    /// Zero turns the timeouts off.
    /// </summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an ABORT TASK may go unanswered before LOGICAL UNIT RESET (open-iscsi abort_timeout: 15 s).</summary>
    public TimeSpan AbortTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a LOGICAL UNIT RESET may go unanswered before the connection is dropped (open-iscsi lu_reset_timeout: 30 s).</summary>
    public TimeSpan ResetTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a timed-out block I/O command is re-issued after the target ended it, before it fails.</summary>
    public int MaxTimeoutReissues { get; init; } = 2;

    /// <summary>
    /// The longest a command can take before the core gives it a final answer while the connection stays up: every
    /// timeout and its escalation, for each re-issue. Kernel timeouts above the core's must exceed this (plus the
    /// owner's replacement timeout for a reinstatement).
    /// </summary>
    public TimeSpan WorstCaseCommandTime => (CommandTimeout + AbortTimeout + ResetTimeout) * (MaxTimeoutReissues + 1);

    /// <summary>Commands outstanding at once (queued or in flight); more fail with <see cref="InvalidOperationException"/>.</summary>
    public int MaxOutstandingCommands { get; init; } = 1024;

    /// <summary>The settings of one login attempt at <paramref name="portal"/>, offering <paramref name="chapAlgorithms"/>
    /// (the session may narrow the configured list): the one place a session's options become a login's.</summary>
    internal LoginSettings LoginAt(IscsiPortal portal, IReadOnlyList<ChapAlgorithm> chapAlgorithms) => new()
    {
        SessionType = SessionType,
        InitiatorName = InitiatorName,
        InitiatorAlias = InitiatorAlias,
        TargetName = TargetName,
        Isid = Isid,
        Chap = Chap,
        TargetChap = TargetChap,
        ChapAlgorithms = chapAlgorithms,
        Operational = Operational,
        Portal = portal,
    };

    public void Validate()
    {
        if (Portals.Count == 0) throw new ArgumentException("at least one portal is needed", nameof(Portals));
        if (string.IsNullOrWhiteSpace(InitiatorName)) throw new ArgumentException("the initiator name is empty", nameof(InitiatorName));
        if (SessionType == IscsiSessionType.Normal && string.IsNullOrWhiteSpace(TargetName))
            throw new ArgumentException("a normal session needs a target name", nameof(TargetName));
        if (TargetChap != null && Chap == null)
            throw new ArgumentException("mutual CHAP (TargetChap) needs the initiator's CHAP credentials too", nameof(TargetChap));
        if (MaxOutstandingCommands is < 1 or > 65536)
            throw new ArgumentException($"MaxOutstandingCommands={MaxOutstandingCommands} is outside 1..65536", nameof(MaxOutstandingCommands));
        if (CommandTimeout < TimeSpan.Zero || AbortTimeout <= TimeSpan.Zero || ResetTimeout <= TimeSpan.Zero)
            throw new ArgumentException("CommandTimeout must not be negative; AbortTimeout and ResetTimeout must be positive");
        if (MaxTimeoutReissues < 0) throw new ArgumentException("MaxTimeoutReissues must not be negative", nameof(MaxTimeoutReissues));
        Operational.Validate();
    }
}

/// <summary>Where a session stands.</summary>
public enum IscsiSessionState
{
    LoggingIn,
    LoggedIn,
    /// <summary>The connection is gone; commands are retained for <see cref="IscsiSession.ReinstateAsync"/>.</summary>
    ConnectionLost,
    /// <summary>The connection is gone and its commands failed; <see cref="IscsiSession.ReinstateAsync"/> may still log in again.</summary>
    Failed,
    Reinstating,
    LoggingOut,
    LoggedOut,
    Disposed,
}

/// <summary>Raised when the session's connection ends other than by our logout.</summary>
public sealed class IscsiConnectionLostEventArgs(Exception reason, int outstandingCommands, bool commandsRetained) : EventArgs
{
    public Exception Reason { get; } = reason;
    public int OutstandingCommands { get; } = outstandingCommands;
    public bool CommandsRetained { get; } = commandsRetained;
}

/// <summary>A SCSI asynchronous event from the target (e.g. capacity changed).</summary>
public sealed class ScsiAsyncEventArgs(ulong lun, Scsi.SenseData? sense) : EventArgs
{
    public ulong Lun { get; } = lun;
    public Scsi.SenseData? Sense { get; } = sense;
}

/// <summary>PDU counters of a session, for diagnostics and tests.</summary>
public sealed class IscsiSessionCounters
{
    public long CommandsSent;
    public long PdusReceived;
    public long DataInPdus;
    /// <summary>Data-In bytes that went into payload pipes (spliced on to an NBD client, never copied here).</summary>
    public long DataInBytesSpliced;
    public long DataOutPdus;
    public long R2Ts;
    public long Reinstatements;
    /// <summary>Commands that passed the command timeout.</summary>
    public long CommandTimeouts;
    public long Aborts;
    public long LunResets;
    /// <summary>Connections dropped because a timed-out command could not be ended otherwise.</summary>
    public long ConnectionDrops;
    /// <summary>Commands re-issued after the target ended them (abort, reset).</summary>
    public long CommandsReissued;
    /// <summary>Commands failed after a timeout (not re-issued).</summary>
    public long CommandsFailedByTimeout;
}
