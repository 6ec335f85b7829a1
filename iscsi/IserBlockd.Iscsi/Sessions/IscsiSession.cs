using System.Diagnostics;
using IserBlockd.Iscsi.Discovery;
using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// An iSCSI session (error recovery level 0, one connection): login with redirection, SCSI commands within the
/// target's CmdSN window, task management, text requests, logout, and reinstatement with the same ISID after a
/// lost connection. Many commands may be in flight; each completes through a pooled task object, so steady-state
/// I/O allocates nothing.
/// </summary>
public sealed class IscsiSession : IAsyncDisposable
{
    private static readonly Action<object?, CancellationToken> CancelCallback = static (state, _) =>
    {
        var task = (ScsiTask)state!;
        task.Session!.OnTaskCanceled(task);
    };

    private readonly IIscsiTransport _transport;
    private readonly ILogger _logger;
    private readonly TaskTable _tasks;
    private readonly ScsiTaskPool _pool;
    private readonly Queue<ScsiTask> _commandQueue;
    private readonly Dictionary<uint, ControlRequest> _controls = new();
    private CommandWindow _window;
    private IscsiConnection? _connection;
    private Task _connectionRun = Task.CompletedTask;
    private IscsiSessionState _state = IscsiSessionState.LoggingIn;
    private bool _failFast;
    private long _nextSequence;
    private uint _nextControlItt;
    private TaskCompletionSource? _drained;
    private IscsiPortal? _preferredPortal;

    private IscsiSession(IIscsiTransport transport, IscsiSessionOptions options, ILogger logger)
    {
        _transport = transport;
        Options = options;
        _logger = logger;
        _tasks = new TaskTable(options.MaxOutstandingCommands);
        _pool = new ScsiTaskPool(Math.Min(options.MaxOutstandingCommands, 1024));
        // sized for the whole window up front, so that the first burst of commands does not grow it
        _commandQueue = new Queue<ScsiTask>(Math.Min(options.MaxOutstandingCommands, 1024));
        Portal = options.Portals[0];
    }

    /// <summary>Connects to the first reachable portal, logs in (following redirections) and enters full feature phase.</summary>
    public static async Task<IscsiSession> LoginAsync(IIscsiTransport transport, IscsiSessionOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("IserBlockd.Iscsi.Session");
        var session = new IscsiSession(transport, options, logger);
        await session.ConnectAsync(cancellationToken).ConfigureAwait(false);
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
        get { lock (Lock) return _state; }
    }

    /// <summary>Commands queued or in flight.</summary>
    public int OutstandingCommands
    {
        get { lock (Lock) return _tasks.Count; }
    }

    /// <summary>The connection ended other than by our logout. Raised on the thread pool.</summary>
    public event EventHandler<IscsiConnectionLostEventArgs>? ConnectionLost;

    /// <summary>The target reported a SCSI asynchronous event. Raised on the thread pool.</summary>
    public event EventHandler<ScsiAsyncEventArgs>? AsynchronousEvent;

    internal object Lock { get; } = new();
    internal ref CommandWindow Window => ref _window;
    internal TaskTable Tasks => _tasks;

    private string TargetDescription => Options.SessionType == IscsiSessionType.Discovery ? "discovery" : Options.TargetName!;

    // ---------------------------------------------------------------- commands

    /// <summary>
    /// Issues a SCSI command. <paramref name="buffer"/> is the data buffer (READ destination or WRITE source, its length is
    /// the expected transfer length); it is used in place, never copied, and must stay untouched until completion.
    /// Cancelling a command that is already on the wire sends ABORT TASK; the command then ends with
    /// <see cref="OperationCanceledException"/> once the target confirms.
    /// </summary>
    public ValueTask<ScsiCommandResult> ExecuteAsync(ulong lun, ReadOnlySpan<byte> cdb, ScsiDataDirection direction, Memory<byte> buffer,
        CancellationToken cancellationToken = default, TaskAttribute attribute = TaskAttribute.Simple)
    {
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<ScsiCommandResult>(cancellationToken);
        var task = Submit(lun, cdb, direction, buffer, cancellationToken, attribute, ScsiTaskMode.Result, out var refusal);
        return task == null ? ValueTask.FromException<ScsiCommandResult>(refusal!) : Started(task, cancellationToken, task.AsValueTask());
    }

    /// <summary>
    /// Block I/O: like <see cref="ExecuteAsync"/>, but UNIT ATTENTION, BUSY, TASK SET FULL and ABORTED COMMAND are
    /// retried here, and any other outcome than GOOD with all data moved throws <see cref="ScsiCommandException"/>.
    /// Completes through the pooled task itself, so a steady stream of I/O allocates nothing.
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
        else
        {
            IscsiConnection? connection;
            lock (Lock) connection = _state == IscsiSessionState.LoggedIn ? _connection : null;
            connection?.SignalWriter();
        }
        return valueTask;
    }

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
        lock (Lock)
        {
            refusal = RefusalLocked();
            if (refusal == null && !_tasks.TryAdd(task))
                refusal = new InvalidOperationException($"more than {_tasks.Capacity} commands outstanding");
            if (refusal == null)
            {
                task.State = ScsiTaskState.Queued;
                task.Sequence = _nextSequence++;
                _commandQueue.Enqueue(task);
                return task;
            }
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

    /// <summary>Writer side: the next command to send on <paramref name="connection"/>, with its CmdSN. Caller holds the lock.</summary>
    internal bool TryTakeCommand(IscsiConnection connection, out ScsiTask task)
    {
        task = null!;
        if (connection != _connection || _state is not (IscsiSessionState.LoggedIn or IscsiSessionState.LoggingOut)) return false;
        while (_commandQueue.TryPeek(out var next))
        {
            if (next.State != ScsiTaskState.Queued)
            {
                _commandQueue.Dequeue(); // cancelled while queued
                continue;
            }
            if (!_window.IsOpen) return false;
            _commandQueue.Dequeue();
            next.CmdSN = _window.Take();
            next.State = ScsiTaskState.Sent;
            next.Connection = connection;
            next.TransportHoldsBuffer = next.Buffer.Length > 0;
            Counters.CommandsSent++;
            task = next;
            return true;
        }
        return false;
    }

    internal void UpdateWindow(uint expCmdSN, uint maxCmdSN)
    {
        IscsiConnection? wake = null;
        lock (Lock)
        {
            if (_window.Update(expCmdSN, maxCmdSN) && _commandQueue.Count > 0) wake = _connection;
        }
        wake?.SignalWriter();
    }

    internal void OnR2TServed(uint itt)
    {
        lock (Lock)
        {
            var task = _tasks.Find(itt);
            if (task != null && task.OutstandingR2Ts > 0) task.OutstandingR2Ts--;
        }
    }

    internal void CompleteTask(ScsiTask task, in ScsiCommandResult result)
    {
        Exception? error = null;
        if (task.Mode == ScsiTaskMode.BlockIo)
        {
            if (!result.IsGood)
            {
                if (TryRetry(task, result)) return;
                error = new ScsiCommandException(task.CommandName, result.Status, result.Sense, result.Response);
            }
            // Only a READ or WRITE that moved less than asked is a lost block; tgtd reports the parameter list of
            // UNMAP and the block of WRITE SAME as not taken (residual = its length) while doing the work.
            else if (result.Underflow && result.ResidualCount > 0 && task.Cdb[0] is not (ScsiOpcode.Unmap or ScsiOpcode.WriteSame16))
                error = new ScsiCommandException($"{task.CommandName} (a short transfer: {result.BytesTransferred} of {result.TransferLength} bytes)", result.Status, null);
        }
        if (!Retire(task, out var connection, out var holdsBuffer)) return;
        task.Cancellation.Dispose();
        if (holdsBuffer) connection?.Transport.ReleaseTask(task.Itt);
        if (error != null) task.SetException(error);
        else if (!task.SetResult(result, out var continuationError))
            _logger.LogError(continuationError, "a block I/O continuation threw on the receive loop; the connection carries on");
    }

    /// <summary>
    /// Block I/O retry inside the session, as a SCSI midlayer does (<see cref="ScsiRetryPolicy"/>). The ITT is kept (the
    /// target finished with it); the command gets a new CmdSN.
    /// </summary>
    private bool TryRetry(ScsiTask task, in ScsiCommandResult result)
    {
        var retry = ScsiRetryPolicy.Decide(result, task.Retries);
        if (retry == ScsiRetry.No) return false;
        var unitAttention = retry == ScsiRetry.Now;
        IscsiConnection? connection;
        bool holdsBuffer;
        lock (Lock)
        {
            if (task.State != ScsiTaskState.Sent || task.AbortRequested) return false;
            task.Retries++;
            connection = task.Connection;
            holdsBuffer = task.TransportHoldsBuffer;
            task.State = ScsiTaskState.Queued;
            task.ResetProgress();
            if (unitAttention) _commandQueue.Enqueue(task);
            else task.Delayed = true;
        }
        if (holdsBuffer) connection?.Transport.ReleaseTask(task.Itt);
        _logger.LogDebug("LUN {Lun}: retrying {Command} after {Status} {Sense}", task.Lun, task.CommandName,
            ScsiCommandException.Describe(result.Status), result.Sense);
        if (unitAttention) connection?.SignalWriter();
        else _ = RequeueLaterAsync(task, task.Itt);
        return true;
    }

    private async Task RequeueLaterAsync(ScsiTask task, uint itt)
    {
        await Task.Delay(ScsiRetryPolicy.TransientDelay).ConfigureAwait(false);
        IscsiConnection? connection;
        lock (Lock)
        {
            // Still ours and still waiting (not cancelled, not re-queued by a reinstatement meanwhile)?
            if (task.Itt != itt || task.State != ScsiTaskState.Queued || !task.Delayed) return;
            task.Delayed = false;
            _commandQueue.Enqueue(task);
            connection = _state == IscsiSessionState.LoggedIn ? _connection : null;
        }
        connection?.SignalWriter();
    }

    internal void FailTask(uint itt, Exception error)
    {
        ScsiTask? task;
        lock (Lock) task = _tasks.Find(itt);
        if (task != null) FailTask(task, error);
    }

    private void FailTask(ScsiTask task, Exception error)
    {
        if (!Retire(task, out var connection, out var holdsBuffer)) return;
        task.Cancellation.Dispose();
        if (holdsBuffer) connection?.Transport.ReleaseTask(task.Itt);
        task.SetException(error);
    }

    /// <summary>Takes a task out of the session; false when something else already did.</summary>
    private bool Retire(ScsiTask task, out IscsiConnection? connection, out bool holdsBuffer)
    {
        lock (Lock)
        {
            connection = task.Connection;
            holdsBuffer = task.TransportHoldsBuffer;
            if (task.State is not (ScsiTaskState.Queued or ScsiTaskState.Sent)) return false;
            task.State = ScsiTaskState.Done;
            task.TransportHoldsBuffer = false;
            _tasks.Remove(task);
            if (_tasks.Count == 0) _drained?.TrySetResult();
            return true;
        }
    }

    private void OnTaskCanceled(ScsiTask task)
    {
        IscsiConnection? connection = null;
        uint itt = 0, cmdSN = 0;
        ulong lun = 0;
        lock (Lock)
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
            _ = AbortTaskAsync(connection, itt, cmdSN, lun);
    }

    private async Task AbortTaskAsync(IscsiConnection connection, uint itt, uint cmdSN, ulong lun)
    {
        try
        {
            var response = await TaskManagementAsync(connection, TaskManagementFunction.AbortTask, lun, itt, cmdSN, CancellationToken.None).ConfigureAwait(false);
            if (response is TaskManagementResponse.FunctionComplete or TaskManagementResponse.TaskDoesNotExist)
                FailTask(itt, new OperationCanceledException($"the command (ITT 0x{itt:x8}) was aborted"));
            else
                _logger.LogWarning("ABORT TASK for ITT 0x{Itt:x8} answered {Response}; the command stays outstanding", itt, response);
        }
        catch (Exception e)
        {
            _logger.LogDebug("ABORT TASK for ITT 0x{Itt:x8} did not complete: {Reason}", itt, e.Message);
        }
    }

    // ---------------------------------------------------------------- control requests

    private Task<ControlResponse> SendControlAsync(ControlRequest request, IscsiConnection? connection = null)
    {
        lock (Lock)
        {
            connection ??= _connection;
            if (connection == null || connection != _connection || _state is not (IscsiSessionState.LoggedIn or IscsiSessionState.LoggingOut))
                return Task.FromException<ControlResponse>(new IscsiConnectionLostException($"the session to {TargetDescription} has no connection"));
            if (request.Itt == 0)
            {
                do _nextControlItt = (_nextControlItt + 1) & 0x7fff_ffff;
                while (_nextControlItt == 0x7fff_ffff || _controls.ContainsKey(0x8000_0000 | _nextControlItt));
                request.Itt = 0x8000_0000 | _nextControlItt;
            }
            _controls[request.Itt] = request;
            connection.EnqueueControl(SendWork.ForControl(request));
        }
        connection.SignalWriter();
        return request.Completion.Task;
    }

    internal bool CompleteControl(uint itt, ControlKind kind, ReadOnlySpan<byte> header, ReadOnlySpan<byte> data)
    {
        ControlRequest? request;
        lock (Lock)
        {
            if (!_controls.TryGetValue(itt, out request) || request.Kind != kind) return false;
            _controls.Remove(itt);
        }
        request.Completion.TrySetResult(new ControlResponse(header.ToArray(), data.ToArray()));
        return true;
    }

    internal void FailControl(uint itt, Exception error)
    {
        ControlRequest? request;
        lock (Lock)
        {
            if (!_controls.Remove(itt, out request)) return;
        }
        request.Completion.TrySetException(error);
    }

    /// <summary>Sends a NOP-Out ping and waits for the NOP-In; returns the round-trip time.</summary>
    public async Task<TimeSpan> PingAsync(CancellationToken cancellationToken = default)
    {
        var started = Stopwatch.GetTimestamp();
        var request = new ControlRequest(ControlKind.Ping);
        await SendControlAsync(request).WaitAsync(cancellationToken).ConfigureAwait(false);
        return Stopwatch.GetElapsedTime(started);
    }

    /// <summary>LOGICAL UNIT RESET (RFC 7143 §11.5.1): ends every task on the LU.</summary>
    public Task<TaskManagementResponse> ResetLogicalUnitAsync(ulong lun, CancellationToken cancellationToken = default)
        => TaskManagementAsync(null, TaskManagementFunction.LogicalUnitReset, lun, BasicHeaderSegment.ReservedTag, 0, cancellationToken);

    private async Task<TaskManagementResponse> TaskManagementAsync(IscsiConnection? connection, TaskManagementFunction function, ulong lun, uint referencedTag, uint refCmdSN, CancellationToken cancellationToken)
    {
        var request = new ControlRequest(ControlKind.TaskManagement) { Function = function, Lun = lun, ReferencedTaskTag = referencedTag, RefCmdSN = refCmdSN };
        var response = await SendControlAsync(request, connection).WaitAsync(cancellationToken).ConfigureAwait(false);
        return TaskManagementResponsePdu.Read(response.Header).Response;
    }

    /// <summary>
    /// A Text Request exchange in full feature phase (RFC 7143 §11.10): sends the keys and collects the answer,
    /// following continuation (F=0, TTT set) until the target's final response.
    /// </summary>
    public async Task<IReadOnlyList<KeyValuePair<string, string>>> SendTextAsync(IEnumerable<KeyValuePair<string, string>> keys, CancellationToken cancellationToken = default)
    {
        var data = TextKeyValues.Format(keys);
        var collected = new List<byte>();
        var ttt = BasicHeaderSegment.ReservedTag;
        uint itt = 0;
        for (var round = 0; ; round++)
        {
            if (round > 1024) throw new IscsiProtocolException("text response never finished");
            // Immediate, as libiscsi sends them: tgtd never opens the CmdSN window of a discovery session beyond
            // ExpCmdSN + 1, so a long SendTargets answer could not be continued with non-immediate requests.
            var request = new ControlRequest(ControlKind.Text) { Immediate = true, Data = data, TargetTransferTag = ttt, Itt = itt };
            var response = await SendControlAsync(request).WaitAsync(cancellationToken).ConfigureAwait(false);
            itt = request.Itt;
            var pdu = TextResponsePdu.Read(response.Header);
            collected.AddRange(response.Data);
            if (pdu.Final && !pdu.Continue) break;
            if (pdu.TargetTransferTag == BasicHeaderSegment.ReservedTag)
                throw new IscsiProtocolException("text response continues but carries no target transfer tag");
            ttt = pdu.TargetTransferTag;
            data = [];
        }
        return TextKeyValues.Parse(collected.ToArray());
    }

    /// <summary>SendTargets (RFC 7143 §12.3, Appendix C): every target the portal reports, with all its portals.</summary>
    public async Task<IReadOnlyList<DiscoveredTarget>> SendTargetsAsync(string value = "All", CancellationToken cancellationToken = default)
    {
        var keys = await SendTextAsync([new(IscsiKeys.SendTargets, value)], cancellationToken).ConfigureAwait(false);
        return SendTargetsResponse.Parse(keys, Portal);
    }

    internal void StartEmptyTextNegotiation(IscsiConnection connection)
    {
        _ = Task.Run(async () =>
        {
            try { await SendTextAsync([]).ConfigureAwait(false); }
            catch (Exception e) { _logger.LogDebug("renegotiation text request failed: {Reason}", e.Message); }
        });
    }

    internal void RaiseAsyncEvent(ulong lun, SenseData? sense)
    {
        var handler = AsynchronousEvent;
        if (handler != null) ThreadPool.UnsafeQueueUserWorkItem(_ => handler(this, new ScsiAsyncEventArgs(lun, sense)), null);
    }

    internal void OnLogoutRequested(IscsiConnection connection)
    {
        // The target wants this connection gone: log out, then treat it as a lost connection so that the owner
        // reinstates the session (open-iscsi does the same).
        _ = Task.Run(async () =>
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await SendControlAsync(new ControlRequest(ControlKind.Logout), connection).WaitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _logger.LogDebug("logout requested by the target did not complete: {Reason}", e.Message);
            }
            connection.Fail(new IscsiConnectionLostException("the target requested a logout"));
        });
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
        var result = await ScsiLun.ExecuteWithRetryAsync(this, 0, cdb, ScsiDataDirection.Read, buffer, _logger, cancellationToken).ConfigureAwait(false);
        return LunAddress.ParseReportLuns(buffer.AsSpan(0, result.BytesTransferred));
    }

    // ---------------------------------------------------------------- login and connection lifecycle

    private IEnumerable<IscsiPortal> PortalOrder()
    {
        if (_preferredPortal != null) yield return _preferredPortal;
        foreach (var p in Options.Portals)
            if (p != _preferredPortal) yield return p;
    }

    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        Exception? last = null;
        foreach (var start in PortalOrder())
        {
            var portal = start;
            for (var redirects = 0; ; redirects++)
            {
                IIscsiConnection? connection = null;
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(Options.LoginTimeout);
                var context = Options.SessionType == IscsiSessionType.Discovery ? $"discovery login at {portal}" : $"login to {Options.TargetName} at {portal}";
                try
                {
                    connection = await _transport.ConnectAsync(portal, timeout.Token).ConfigureAwait(false);
                    var settings = new LoginSettings
                    {
                        SessionType = Options.SessionType,
                        InitiatorName = Options.InitiatorName,
                        InitiatorAlias = Options.InitiatorAlias,
                        TargetName = Options.TargetName,
                        Isid = Options.Isid,
                        Chap = Options.Chap,
                        TargetChap = Options.TargetChap,
                        ChapAlgorithms = Options.ChapAlgorithms,
                        Operational = Options.Operational,
                        Portal = portal,
                    };
                    var outcome = await new LoginExchange(connection, settings, _logger).RunAsync(timeout.Token).ConfigureAwait(false);
                    if (outcome.RedirectTo is { } next)
                    {
                        await connection.DisposeAsync().ConfigureAwait(false);
                        connection = null;
                        if (redirects >= Options.MaxRedirects)
                            throw new TargetRedirectException($"{context} failed: more than {Options.MaxRedirects} redirections");
                        if (outcome.RedirectIsPermanent) _preferredPortal = next with { PortalGroupTag = null };
                        portal = next;
                        continue;
                    }
                    var parameters = outcome.Parameters!;
                    var window = (int)Math.Max(1, (long)(int)(outcome.MaxCmdSN - outcome.ExpCmdSN) + 1);
                    await connection.StartFullFeaturePhaseAsync(new FullFeaturePhaseContext(parameters, window), timeout.Token).ConfigureAwait(false);
                    Activate(connection, portal, outcome);
                    return;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    last = new IscsiLoginException($"{context} timed out after {Options.LoginTimeout.TotalSeconds:0.#} s");
                }
                catch (IscsiTransportException e)
                {
                    last = new IscsiTransportException($"{context} failed: {e.Message}", e);
                }
                catch (IscsiProtocolException e)
                {
                    last = new IscsiLoginException($"{context} failed: {e.Message}", 0, 0, e);
                }
                finally
                {
                    if (connection != null && _state != IscsiSessionState.LoggedIn) await connection.DisposeAsync().ConfigureAwait(false);
                }
                _logger.LogWarning("{Reason}", last.Message);
                break;
            }
        }
        throw last ?? new IscsiLoginException("no portal to log in to");
    }

    private void Activate(IIscsiConnection transportConnection, IscsiPortal portal, LoginOutcome outcome)
    {
        var connection = new IscsiConnection(this, transportConnection, outcome.Parameters!, outcome.ExpStatSN, _logger);
        int requeued;
        lock (Lock)
        {
            _window.Reset(outcome.CmdSN, outcome.ExpCmdSN, outcome.MaxCmdSN);
            _connection = connection;
            Tsih = outcome.Tsih;
            Portal = portal;
            Parameters = outcome.Parameters!;
            _state = IscsiSessionState.LoggedIn;
            _failFast = false;
            // Commands kept from a lost connection go first, in their original order.
            var pending = _tasks.Snapshot().Where(t => t.State == ScsiTaskState.Queued).OrderBy(t => t.Sequence).ToList();
            requeued = pending.Count;
            _commandQueue.Clear();
            foreach (var t in pending)
            {
                t.Delayed = false;
                _commandQueue.Enqueue(t);
            }
            _connectionRun = RunConnectionAsync(connection);
        }
        _logger.LogInformation("logged in to {Target} at {Portal} over {Transport} (ISID {Isid}, TSIH {Tsih}): {Parameters}",
            TargetDescription, portal, _transport.Name, Options.Isid, outcome.Tsih, outcome.Parameters);
        _logger.LogDebug("command window: CmdSN {CmdSN}, ExpCmdSN {ExpCmdSN}, MaxCmdSN {MaxCmdSN}", outcome.CmdSN, outcome.ExpCmdSN, outcome.MaxCmdSN);
        if (requeued > 0) _logger.LogInformation("re-issuing {Count} commands on the new connection", requeued);
        connection.SignalWriter();
    }

    private async Task RunConnectionAsync(IscsiConnection connection)
    {
        await Task.Yield();
        var error = await connection.RunAsync().ConfigureAwait(false);
        OnConnectionEnded(connection, error);
    }

    private void OnConnectionEnded(IscsiConnection connection, Exception? error)
    {
        List<ScsiTask> toFail = [];
        List<ControlRequest> controls;
        Exception taskError;
        var retained = 0;
        var raise = false;
        lock (Lock)
        {
            if (_connection != connection) return;
            _connection = null;
            controls = _controls.Values.ToList();
            _controls.Clear();
            if (error == null || _state is IscsiSessionState.LoggingOut or IscsiSessionState.Disposed or IscsiSessionState.LoggedOut)
            {
                if (_state != IscsiSessionState.Disposed) _state = IscsiSessionState.LoggedOut;
                taskError = new IscsiSessionClosedException($"the session to {TargetDescription} was logged out");
                toFail = _tasks.Snapshot();
                _commandQueue.Clear();
            }
            else if (Options.RetainCommandsOnConnectionLoss && !_failFast)
            {
                _state = IscsiSessionState.ConnectionLost;
                taskError = error;
                foreach (var t in _tasks.Snapshot())
                {
                    if (t.State == ScsiTaskState.Sent)
                    {
                        t.State = ScsiTaskState.Queued;
                        t.ResetProgress();
                    }
                    retained++;
                }
                raise = true;
            }
            else
            {
                _state = IscsiSessionState.Failed;
                taskError = new IscsiConnectionLostException($"connection to {Portal} lost: {error.Message}", error);
                toFail = _tasks.Snapshot();
                _commandQueue.Clear();
                raise = true;
            }
        }
        if (error != null && raise)
            _logger.LogError("iSCSI connection to {Portal} for {Target} failed: {Reason}; {Count} commands {What}",
                Portal, TargetDescription, error.Message, retained > 0 ? retained : toFail.Count, retained > 0 ? "kept for reinstatement" : "failed");
        else
            _logger.LogInformation("connection to {Portal} for {Target} closed", Portal, TargetDescription);
        foreach (var t in toFail) FailTask(t, taskError);
        foreach (var c in controls) c.Completion.TrySetException(new IscsiConnectionLostException($"connection to {Portal} closed", error));
        if (raise && error != null)
        {
            var handler = ConnectionLost;
            var args = new IscsiConnectionLostEventArgs(error, retained > 0 ? retained : toFail.Count, retained > 0);
            if (handler != null) ThreadPool.UnsafeQueueUserWorkItem(_ => handler(this, args), null);
        }
    }

    /// <summary>
    /// ERL0 session reinstatement (RFC 7143 §6.3.5): logs in again with the same ISID and TSIH 0, which makes the
    /// target drop the old session, then re-issues every retained command (block I/O is idempotent) before new ones.
    /// </summary>
    public async Task ReinstateAsync(CancellationToken cancellationToken = default)
    {
        IscsiConnection? old;
        lock (Lock)
        {
            if (_state is not (IscsiSessionState.ConnectionLost or IscsiSessionState.Failed or IscsiSessionState.LoggedIn))
                throw new InvalidOperationException($"cannot reinstate a session that is {_state}");
            old = _state == IscsiSessionState.LoggedIn ? _connection : null;
            if (old == null) _state = IscsiSessionState.Reinstating;
        }
        if (old != null)
        {
            // A live connection is replaced: end it first so that its commands are retained or failed.
            old.Fail(new IscsiConnectionLostException("replaced by session reinstatement"));
            await _connectionRun.ConfigureAwait(false);
            lock (Lock)
            {
                if (_state is IscsiSessionState.ConnectionLost or IscsiSessionState.Failed) _state = IscsiSessionState.Reinstating;
                else throw new InvalidOperationException($"cannot reinstate a session that is {_state}");
            }
        }
        try
        {
            await ConnectAsync(cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref Counters.Reinstatements);
        }
        catch
        {
            lock (Lock)
            {
                if (_state == IscsiSessionState.Reinstating)
                    _state = Options.RetainCommandsOnConnectionLoss && !_failFast ? IscsiSessionState.ConnectionLost : IscsiSessionState.Failed;
            }
            throw;
        }
    }

    /// <summary>
    /// Declares the current connection dead (e.g. a NOP-Out ping or a command timed out on a silent network) and closes
    /// it: <see cref="ConnectionLost"/> follows, and the commands on it are retained or failed as after any loss.
    /// Does nothing when there is no connection.
    /// </summary>
    public void AbortConnection(string reason)
    {
        IscsiConnection? connection;
        lock (Lock) connection = _state == IscsiSessionState.LoggedIn ? _connection : null;
        connection?.Fail(new IscsiConnectionLostException(reason));
    }

    /// <summary>
    /// Gives up on commands retained after a connection loss (the replacement timeout expired): they fail with
    /// <paramref name="reason"/>, and new commands fail at once until <see cref="ReinstateAsync"/> succeeds.
    /// </summary>
    public void FailOutstandingCommands(Exception reason)
    {
        List<ScsiTask> toFail;
        lock (Lock)
        {
            if (_state is IscsiSessionState.LoggedIn or IscsiSessionState.LoggingOut)
                throw new InvalidOperationException("the session is connected; its commands are still in flight");
            _failFast = true;
            toFail = _tasks.Snapshot();
            _commandQueue.Clear();
            if (_state == IscsiSessionState.ConnectionLost) _state = IscsiSessionState.Failed;
        }
        foreach (var t in toFail) FailTask(t, reason);
    }

    /// <summary>Waits for outstanding commands, then logs the session out (reason: close the session).</summary>
    public async Task LogoutAsync(CancellationToken cancellationToken = default)
    {
        IscsiConnection connection;
        Task drained;
        lock (Lock)
        {
            if (_state is IscsiSessionState.LoggedOut or IscsiSessionState.Disposed) return;
            if (_state != IscsiSessionState.LoggedIn)
            {
                // No connection: nothing to say to the target; what was retained fails.
                _state = IscsiSessionState.LoggedOut;
                connection = null!;
                drained = null!;
            }
            else
            {
                _state = IscsiSessionState.LoggingOut;
                connection = _connection!;
                _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                if (_tasks.Count == 0) _drained.TrySetResult();
                drained = _drained.Task;
            }
        }
        if (connection == null)
        {
            FailAll(new IscsiSessionClosedException($"the session to {TargetDescription} was logged out"));
            return;
        }
        try
        {
            await drained.WaitAsync(cancellationToken).ConfigureAwait(false);
            var response = await SendControlAsync(new ControlRequest(ControlKind.Logout), connection).WaitAsync(cancellationToken).ConfigureAwait(false);
            var logout = LogoutResponsePdu.Read(response.Header);
            if (logout.Response != LogoutResponse.ClosedSuccessfully)
                _logger.LogWarning("logout from {Target}: target answered {Response}", TargetDescription, logout.Response);
            connection.MarkLoggedOut();
        }
        finally
        {
            connection.Fail(new IscsiSessionClosedException("logged out"));
            await _connectionRun.ConfigureAwait(false);
            lock (Lock)
            {
                if (_state != IscsiSessionState.Disposed) _state = IscsiSessionState.LoggedOut;
            }
        }
        _logger.LogInformation("logged out of {Target}", TargetDescription);
    }

    private void FailAll(Exception reason)
    {
        List<ScsiTask> toFail;
        lock (Lock)
        {
            toFail = _tasks.Snapshot();
            _commandQueue.Clear();
        }
        foreach (var t in toFail) FailTask(t, reason);
    }

    /// <summary>Logs out if still logged in (bounded wait), then closes the connection and fails what is left.</summary>
    public async ValueTask DisposeAsync()
    {
        bool loggedIn;
        lock (Lock)
        {
            if (_state == IscsiSessionState.Disposed) return;
            loggedIn = _state == IscsiSessionState.LoggedIn;
        }
        if (loggedIn)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await LogoutAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _logger.LogDebug("logout during dispose failed: {Reason}", e.Message);
            }
        }
        IscsiConnection? connection;
        lock (Lock)
        {
            _state = IscsiSessionState.Disposed;
            connection = _connection;
        }
        connection?.Fail(new IscsiSessionClosedException("session disposed"));
        await _connectionRun.ConfigureAwait(false);
        FailAll(new IscsiSessionClosedException($"the session to {TargetDescription} was disposed"));
    }
}
