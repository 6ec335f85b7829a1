using System.Diagnostics;
using IserBlockd.Iscsi.Discovery;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.ConnectionPort;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// An iSCSI session (error recovery level 0, one connection): login with redirection, SCSI commands within the
/// target's CmdSN window, each with a deadline (<see cref="CommandTimeoutEscalation"/>), task management, text
/// requests, logout, and reinstatement with the same ISID after a lost connection. Many commands may be in flight;
/// each completes through a pooled task object, so steady-state I/O allocates nothing. The tasks' life is kept by
/// <see cref="TaskLifecycle"/>; the control exchanges live in their own files (Control/).
/// </summary>
public sealed partial class IscsiSession : IAsyncDisposable
{
    private static readonly Action<object?, CancellationToken> CancelCallback = static (state, _) =>
    {
        var task = (ScsiTask)state!;
        task.Session!.OnTaskCanceled(task);
    };

    private readonly IIscsiTransport _transport;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    private readonly TaskLifecycle _tasks;
    private readonly ScsiTaskPool _pool;
    private readonly SendHold _sendHold;
    private readonly ControlChannel _controls = new();
    private readonly SessionLogin _login;
    private readonly CommandTimeoutEscalation _escalation;
    private FullFeaturePhase? _connection;
    private Task _connectionRun = Task.CompletedTask;
    private IscsiSessionState _state = IscsiSessionState.LoggingIn;
    private bool _failFast;

    private IscsiSession(IIscsiTransport transport, IscsiSessionOptions options, ILogger logger)
    {
        _transport = transport;
        Options = options;
        _logger = logger;
        _tasks = new TaskLifecycle(_lock, options.MaxOutstandingCommands, options.CommandTimeout);
        _pool = new ScsiTaskPool(Math.Min(options.MaxOutstandingCommands, 1024));
        _sendHold = new SendHold(WakeWriter);
        _login = new SessionLogin(transport, options, logger);
        _escalation = new CommandTimeoutEscalation(this, _tasks, options, logger);
        Portal = options.Portals[0];
    }

    /// <summary>Connects to the first reachable portal, logs in (following redirections) and enters full feature phase.</summary>
    public static async Task<IscsiSession> LoginAsync(IIscsiTransport transport, IscsiSessionOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("IserBlockd.Iscsi.Session");
        var session = new IscsiSession(transport, options, logger);
        try
        {
            await session.ConnectAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await session._escalation.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return session;
    }

    public IscsiSessionOptions Options { get; }

    public Isid Isid => Options.Isid;

    /// <summary>The target's session handle of the current (or last) login.</summary>
    public ushort Tsih { get; private set; }

    /// <summary>The portal of the current (or last) connection, after any redirection.</summary>
    public IscsiPortal Portal { get; private set; }

    public NegotiatedParameters Parameters { get; private set; } = new();

    public IscsiSessionCounters Counters { get; } = new();

    public string TransportName => _transport.Name;

    public IscsiSessionState State
    {
        get { lock (_lock) return _state; }
    }

    /// <summary>Commands queued or in flight.</summary>
    public int OutstandingCommands => _tasks.Count;

    /// <summary>The command window now (RFC 7143 §4.2.2.1): the next CmdSN, the target's ExpCmdSN and MaxCmdSN.</summary>
    public (uint CmdSN, uint ExpCmdSN, uint MaxCmdSN) CommandWindow => _tasks.WindowNow;

    /// <summary>The connection ended other than by our logout. Raised on the thread pool.</summary>
    public event EventHandler<IscsiConnectionLostEventArgs>? ConnectionLost;

    /// <summary>The target reported a SCSI asynchronous event. Raised on the thread pool.</summary>
    public event EventHandler<ScsiAsyncEventArgs>? AsynchronousEvent;

    /// <summary>A command was answered with UNIT ATTENTION (it is retried). Raised on the thread pool.</summary>
    public event EventHandler<ScsiAsyncEventArgs>? UnitAttention;

    /// <summary>
    /// The target reported that its LUN inventory changed (REPORTED LUNS DATA HAS CHANGED, 3F/0E, as a unit attention
    /// or an asynchronous event): the hook for a rescan (REPORT LUNS). Raised on the thread pool.
    /// </summary>
    public event EventHandler<ScsiAsyncEventArgs>? ReportedLunsChanged;

    internal TaskLifecycle Tasks => _tasks;

    internal ControlChannel Controls => _controls;

    private string TargetDescription => Options.SessionType == IscsiSessionType.Discovery ? "discovery" : Options.TargetName!;

    // ---------------------------------------------------------------- commands

    /// <summary>
    /// Issues a SCSI command. <paramref name="buffer"/> is the data buffer (READ destination or WRITE source, its length is
    /// the expected transfer length); it is used in place, never copied, and must stay untouched until completion.
    /// Cancelling a command that is already on the wire sends ABORT TASK; the command then ends with
    /// <see cref="OperationCanceledException"/> once the target confirms. A command past the command timeout is
    /// aborted and ends with <see cref="IscsiCommandTimeoutException"/>.
    /// </summary>
    public ValueTask<ScsiCommandResult> ExecuteAsync(ulong lun, ReadOnlySpan<byte> cdb, ScsiDataDirection direction, Memory<byte> buffer,
        CancellationToken cancellationToken = default, TaskAttribute attribute = TaskAttribute.Simple)
        => Execute(lun, cdb, direction, buffer, cancellationToken, attribute, ScsiTaskMode.Result);

    /// <summary>
    /// Like <see cref="ExecuteAsync"/>, with the session's retry policy (<see cref="ScsiRetryPolicy"/>: UNIT ATTENTION,
    /// BUSY, TASK SET FULL, becoming ready, ABORTED COMMAND, timeouts); any other outcome than GOOD (or RECOVERED
    /// ERROR) throws <see cref="ScsiCommandException"/>.
    /// </summary>
    public ValueTask<ScsiCommandResult> ExecuteWithRetryAsync(ulong lun, ReadOnlySpan<byte> cdb, ScsiDataDirection direction, Memory<byte> buffer,
        CancellationToken cancellationToken = default)
        => Execute(lun, cdb, direction, buffer, cancellationToken, TaskAttribute.Simple, ScsiTaskMode.Retried);

    private ValueTask<ScsiCommandResult> Execute(ulong lun, ReadOnlySpan<byte> cdb, ScsiDataDirection direction, Memory<byte> buffer,
        CancellationToken cancellationToken, TaskAttribute attribute, ScsiTaskMode mode)
    {
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<ScsiCommandResult>(cancellationToken);
        var task = Submit(lun, cdb, direction, buffer, cancellationToken, attribute, mode, out var refusal);
        return task == null ? ValueTask.FromException<ScsiCommandResult>(refusal!) : Started(task, cancellationToken, task.AsValueTask());
    }

    /// <summary>
    /// Block I/O: retried like <see cref="ExecuteWithRetryAsync"/>, and a READ or WRITE that moved less (or more) than
    /// asked fails too. Completes through the pooled task itself, so a steady stream of I/O allocates nothing.
    /// </summary>
    internal ValueTask ExecuteBlockIoAsync(ulong lun, ReadOnlySpan<byte> cdb, ScsiDataDirection direction, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled(cancellationToken);
        var task = Submit(lun, cdb, direction, buffer, cancellationToken, TaskAttribute.Simple, ScsiTaskMode.BlockIo, out var refusal);
        return task == null ? ValueTask.FromException(refusal!) : Started(task, cancellationToken, task.AsBlockIoValueTask());
    }

    private T Started<T>(ScsiTask task, CancellationToken cancellationToken, T valueTask)
    {
        if (cancellationToken.IsCancellationRequested) OnTaskCanceled(task);
        else _sendHold.WakeUnlessHeld();
        return valueTask;
    }

    private FullFeaturePhase? CurrentConnection()
    {
        lock (_lock) return _state is IscsiSessionState.LoggedIn or IscsiSessionState.LoggingOut ? _connection : null;
    }

    /// <summary>
    /// The caller is about to issue several commands together (an NBD server starting the requests one receive
    /// brought): they wait in the queue until the matching <see cref="ReleaseSends"/> and then leave in one send. Holds
    /// nest and must never span a wait (<see cref="SendHold"/>).
    /// </summary>
    public void HoldSends() => _sendHold.Hold();

    /// <summary>Ends a <see cref="HoldSends"/>; the last one sends what the holds kept back, on this thread.</summary>
    public void ReleaseSends() => _sendHold.Release();

    /// <summary>Wakes the writer of the connection commands go out on, without the session lock: a wake-up that reaches
    /// a connection just ending is harmless (its writer takes nothing), and a new connection's writer is woken when it
    /// is activated.</summary>
    internal void WakeWriter() => Volatile.Read(ref _connection)?.SignalWriter();

    private ScsiTask? Submit(ulong lun, ReadOnlySpan<byte> cdb, ScsiDataDirection direction, Memory<byte> buffer,
        CancellationToken cancellationToken, TaskAttribute attribute, ScsiTaskMode mode, out Exception? refusal)
    {
        if (cdb.Length is 0 or > 260) throw new ArgumentException($"CDB length {cdb.Length} is not 1..260", nameof(cdb));
        if (direction == ScsiDataDirection.None && buffer.Length > 0) throw new ArgumentException("a command without data direction cannot have a buffer", nameof(buffer));
        var task = _pool.Rent();
        task.Session = this;
        task.Lun = lun;
        task.SetCdb(cdb);
        task.Direction = direction;
        task.Buffer = buffer;
        task.Attribute = attribute;
        task.Mode = mode;
        task.AbortRequested = false;
        task.ResetProgress();
        // Registered while the task is still Free (the callback ignores it then), so that a registration can never
        // outlive this use of the pooled object: completion disposes it before the result is published.
        task.Cancellation = cancellationToken.CanBeCanceled ? cancellationToken.UnsafeRegister(CancelCallback, task) : default;
        var now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            refusal = RefusalLocked();
            if (refusal == null && !_tasks.TryAddLocked(task, now))
                refusal = new InvalidOperationException($"more than {_tasks.Capacity} commands outstanding");
            if (refusal == null) return task;
        }
        task.Cancellation.Dispose();
        task.ReturnToPool();
        return null;
    }

    private Exception? RefusalLocked() => _state switch
    {
        IscsiSessionState.LoggedIn => null,
        IscsiSessionState.ConnectionLost or IscsiSessionState.Reinstating when !_failFast => null,
        IscsiSessionState.ConnectionLost or IscsiSessionState.Reinstating or IscsiSessionState.Failed
            => new IscsiConnectionLostException($"the session to {TargetDescription} has no connection"),
        IscsiSessionState.LoggingIn => new IscsiSessionClosedException("the session is not logged in yet"),
        _ => new IscsiSessionClosedException($"the session to {TargetDescription} is {_state}"),
    };

    internal void UpdateWindow(uint expCmdSN, uint maxCmdSN)
    {
        if (_tasks.UpdateWindow(expCmdSN, maxCmdSN)) WakeWriter();
    }

    /// <summary>The target answered a command: done, retried (per <see cref="ScsiRetryPolicy"/>) or failed.</summary>
    internal void CompleteTask(ScsiTask task, in ScsiCommandResult result)
    {
        Exception? error = null;
        if (task.Mode != ScsiTaskMode.Result)
        {
            if (result.IsUnitAttention) RaiseUnitAttention(task.Lun, result.Sense!);
            if (!result.IsSuccess)
            {
                if (TryRetry(task, result)) return;
                error = new ScsiCommandException(task.CommandName, result.Status, result.Sense, result.Response);
            }
            else error = ScsiRetryPolicy.CheckTransfer(task, result);
            if (result.Status == ScsiStatus.CheckCondition && error == null)
                SessionLog.SucceededWithSense(_logger, task.Lun, task.CommandName, result.Sense);
        }
        if (!_tasks.Retire(task, error, out var connection, out var holdsBuffer)) return;
        if (error != null) FailRetired(task, connection, holdsBuffer, error);
        else FinishRetired(task, connection, holdsBuffer, result);
    }

    /// <summary>Completes a task already taken out of the session with a successful result.</summary>
    internal void FinishRetired(ScsiTask task, FullFeaturePhase? connection, bool holdsBuffer, in ScsiCommandResult result)
    {
        LetGo(task, connection, holdsBuffer);
        if (!task.SetResult(result, out var continuationError))
            SessionLog.ContinuationThrew(_logger, continuationError);
    }

    /// <summary>The one retry path of the core, as a SCSI midlayer: the ITT is kept (the target finished with it), the command gets a new CmdSN.</summary>
    private bool TryRetry(ScsiTask task, in ScsiCommandResult result)
    {
        var delay = ScsiRetryPolicy.Decide(result, task.Retries, Stopwatch.GetTimestamp(), task.RetryUntil);
        if (delay == null) return false;
        var later = delay.Value > TimeSpan.Zero;
        if (!_tasks.TryRequeue(task, later, out var connection, out var holdsBuffer)) return false;
        if (holdsBuffer) connection?.Transport.ReleaseTask(task.Itt);
        if (task.Retries == 1 || _logger.IsEnabled(LogLevel.Trace))
            SessionLog.Retrying(_logger, task.Lun, task.CommandName, ScsiCommandException.Describe(result.Status), result.Sense);
        if (later) _ = RequeueLaterAsync(task, task.Itt, delay.Value);
        else WakeWriter();
        return true;
    }

    private async Task RequeueLaterAsync(ScsiTask task, uint itt, TimeSpan delay)
    {
        await Task.Delay(delay).ConfigureAwait(false);
        if (_tasks.RequeueDelayed(task, itt)) WakeWriter();
    }

    internal void FailTask(uint itt, Exception error)
    {
        var task = _tasks.Find(itt);
        if (task != null) FailTask(task, error);
    }

    private void FailTask(ScsiTask task, Exception error)
    {
        if (_tasks.Retire(task, error, out var connection, out var holdsBuffer)) FailRetired(task, connection, holdsBuffer, error);
    }

    /// <summary>Fails a task already taken out of the session.</summary>
    internal void FailRetired(ScsiTask task, FullFeaturePhase? connection, bool holdsBuffer, Exception error)
    {
        LetGo(task, connection, holdsBuffer);
        task.SetException(error);
    }

    /// <summary>What a retired task held before its caller hears of it: the cancellation registration, and the buffer
    /// the transport may still hold for it (iSER).</summary>
    private static void LetGo(ScsiTask task, FullFeaturePhase? connection, bool holdsBuffer)
    {
        task.Cancellation.Dispose();
        if (holdsBuffer) connection?.Transport.ReleaseTask(task.Itt);
    }

    /// <summary>A task the target ended (abort, reset): its buffer is released; it was re-queued, or it fails now.</summary>
    internal void FinishEnded(in EndedTask ended, string why)
    {
        if (ended.Task == null) return;
        // Whether or not it has a buffer: the transport may hold a resource for the answer that will never come (iSER).
        ended.Connection?.Transport.ReleaseTask(ended.Itt);
        if (ended.Reissued)
        {
            Interlocked.Increment(ref Counters.CommandsReissued);
            WakeWriter();
            return;
        }
        Interlocked.Increment(ref Counters.CommandsFailedByTimeout);
        FailTask(ended.Task, new IscsiCommandTimeoutException($"{ended.Task.CommandName} on LUN {ended.Task.Lun} {why}"));
    }

    /// <summary>Every task of <paramref name="lun"/> on <paramref name="connection"/> was ended by a reset: re-issued or failed, never forgotten.</summary>
    internal (int Reissued, int Failed) EndLunTasks(ulong lun, FullFeaturePhase connection, string why)
    {
        int reissued = 0, failed = 0;
        foreach (var ended in _tasks.EndLunAtTarget(lun, connection, Options.MaxTimeoutReissues))
        {
            if (ended.Reissued) reissued++;
            else failed++;
            FinishEnded(ended, why);
        }
        return (reissued, failed);
    }

    private void OnTaskCanceled(ScsiTask task)
    {
        FullFeaturePhase? connection = null;
        uint itt = 0, cmdSN = 0;
        ulong lun = 0;
        lock (_lock)
        {
            switch (task.State)
            {
                case ScsiTaskState.Queued:
                    break;
                case ScsiTaskState.Sent when !task.AbortRequested && task.Connection == _connection && _connection != null:
                    task.AbortRequested = true;
                    connection = task.Connection;
                    itt = task.Itt;
                    cmdSN = task.CmdSN;
                    lun = task.Lun;
                    break;
                default:
                    return;
            }
        }
        if (connection == null)
            FailTask(task, new OperationCanceledException("the command was cancelled before it was sent"));
        else
            _ = AbortCanceledAsync(connection, itt, cmdSN, lun);
    }

    private async Task AbortCanceledAsync(FullFeaturePhase connection, uint itt, uint cmdSN, ulong lun)
    {
        try
        {
            using var timeout = new CancellationTokenSource(Options.AbortTimeout);
            var response = await TaskManagementExchange.RunAsync(this, connection, TaskManagementFunction.AbortTask, lun, itt, cmdSN, timeout.Token).ConfigureAwait(false);
            if (response == TaskManagementResponse.FunctionComplete || (response == TaskManagementResponse.TaskDoesNotExist && _tasks.TargetHasReceived(cmdSN)))
                FailTask(itt, new OperationCanceledException($"the command (ITT 0x{itt:x8}) was aborted"));
            else
                SessionLog.AbortNotConfirmed(_logger, itt, response);
        }
        catch (Exception e)
        {
            SessionLog.AbortIncomplete(_logger, itt, e.Message);
        }
    }

    // ---------------------------------------------------------------- control requests

    internal Task<ControlResponse> SendControlAsync(ControlRequest request, FullFeaturePhase? connection)
    {
        lock (_lock)
        {
            connection ??= _connection;
            if (connection == null || connection != _connection || _state is not (IscsiSessionState.LoggedIn or IscsiSessionState.LoggingOut))
                return Task.FromException<ControlResponse>(new IscsiConnectionLostException($"the session to {TargetDescription} has no connection"));
        }
        return _controls.Send(request, connection);
    }

    /// <summary>
    /// Liveness from traffic: any PDU received proves the connection alive. A NOP-Out goes out only after
    /// <paramref name="interval"/> of receive silence, and the connection counts as dead (false) only when that ping
    /// stays unanswered for <paramref name="timeout"/> with nothing else arriving meanwhile. True without a
    /// connection (nothing to probe).
    /// </summary>
    public async Task<bool> ProbeLivenessAsync(TimeSpan interval, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var connection = CurrentConnection();
        if (connection == null || Stopwatch.GetElapsedTime(connection.LastReceiveTimestamp) < interval) return true;
        var ping = NopExchange.PingAsync(this, CancellationToken.None);
        var sent = Stopwatch.GetTimestamp();
        while (true)
        {
            var quietSince = Math.Max(sent, connection.LastReceiveTimestamp);
            var left = timeout - Stopwatch.GetElapsedTime(quietSince);
            if (left <= TimeSpan.Zero) return ping.IsCompletedSuccessfully;
            try
            {
                await ping.WaitAsync(left, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (TimeoutException)
            {
                // Traffic that arrived meanwhile (Data-In queued ahead of the NOP-In) extends the wait.
            }
            catch (IscsiException)
            {
                return true; // the connection is already gone; its loss is reported by ConnectionLost
            }
        }
    }

    /// <summary>Sends a NOP-Out ping and waits for the NOP-In; returns the round-trip time.</summary>
    public Task<TimeSpan> PingAsync(CancellationToken cancellationToken = default) => NopExchange.PingAsync(this, cancellationToken);

    /// <summary>
    /// LOGICAL UNIT RESET (RFC 7143 §11.5.1): ends every task on the LU. The tasks it ended are re-issued (block I/O)
    /// or failed, never left waiting.
    /// </summary>
    public async Task<TaskManagementResponse> ResetLogicalUnitAsync(ulong lun, CancellationToken cancellationToken = default)
    {
        var connection = CurrentConnection() ?? throw new IscsiConnectionLostException($"the session to {TargetDescription} has no connection");
        var response = await TaskManagementExchange.RunAsync(this, connection, TaskManagementFunction.LogicalUnitReset, lun, BasicHeaderSegment.ReservedTag, 0, cancellationToken).ConfigureAwait(false);
        if (response == TaskManagementResponse.FunctionComplete)
        {
            var (reissued, failed) = EndLunTasks(lun, connection, "was ended by a LOGICAL UNIT RESET");
            if (reissued + failed > 0) SessionLog.ResetEnded(_logger, lun, reissued + failed, reissued);
        }
        return response;
    }

    /// <summary>A Text Request exchange in full feature phase (RFC 7143 §11.10), with continuation.</summary>
    public Task<IReadOnlyList<KeyValuePair<string, string>>> SendTextAsync(IEnumerable<KeyValuePair<string, string>> keys, CancellationToken cancellationToken = default)
        => TextExchange.RunAsync(this, keys, cancellationToken);

    /// <summary>SendTargets (RFC 7143 §12.3, Appendix C): every target the portal reports, with all its portals.</summary>
    public async Task<IReadOnlyList<DiscoveredTarget>> SendTargetsAsync(string value = "All", CancellationToken cancellationToken = default)
    {
        var keys = await SendTextAsync([new(IscsiKeys.SendTargets, value)], cancellationToken).ConfigureAwait(false);
        return SendTargetsResponse.Parse(keys, Portal);
    }

    internal void RaiseAsyncEvent(ulong lun, SenseData? sense)
    {
        if (sense != null) CheckLunInventory(lun, sense);
        var handler = AsynchronousEvent;
        if (handler != null) ThreadPool.UnsafeQueueUserWorkItem(_ => handler(this, new ScsiAsyncEventArgs(lun, sense)), null);
    }

    private void RaiseUnitAttention(ulong lun, SenseData sense)
    {
        CheckLunInventory(lun, sense);
        var handler = UnitAttention;
        if (handler != null) ThreadPool.UnsafeQueueUserWorkItem(_ => handler(this, new ScsiAsyncEventArgs(lun, sense)), null);
    }

    private void CheckLunInventory(ulong lun, SenseData sense)
    {
        if (sense.AdditionalSenseCode != 0x3f || sense.AdditionalSenseCodeQualifier != 0x0e) return;
        SessionLog.ReportedLunsChanged(_logger, TargetDescription, lun);
        var handler = ReportedLunsChanged;
        if (handler != null) ThreadPool.UnsafeQueueUserWorkItem(_ => handler(this, new ScsiAsyncEventArgs(lun, sense)), null);
    }

    // ---------------------------------------------------------------- LUNs

    /// <summary>Probes a LUN (TEST UNIT READY with UNIT ATTENTION retry, INQUIRY, READ CAPACITY, VPD) and returns it.</summary>
    public Task<ScsiLun> OpenLunAsync(ulong lun, CancellationToken cancellationToken = default)
        => ScsiLun.OpenAsync(this, lun, _logger, cancellationToken);

    /// <summary>REPORT LUNS on LUN 0.</summary>
    public async Task<IReadOnlyList<ulong>> ReportLunsAsync(CancellationToken cancellationToken = default)
    {
        var buffer = new byte[16 + 8 * 256];
        var cdb = new byte[12];
        CdbBuilder.ReportLuns(cdb, (uint)buffer.Length);
        var result = await ExecuteWithRetryAsync(0, cdb, ScsiDataDirection.Read, buffer, cancellationToken).ConfigureAwait(false);
        return LunAddress.ParseReportLuns(buffer.AsSpan(0, result.BytesTransferred));
    }
}
