using IserBlockd.BlockDev;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Control;
using IserBlockd.Daemon.Identity;
using IserBlockd.Daemon.Luns;
using IserBlockd.Daemon.Sessions;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Transport.Selection;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Runtime;

/// <summary>
/// The supervisor of one node (error recovery level 0, as every Linux initiator), for the daemon and for
/// <c>iserblockd export</c> alike. One loop does the whole life of the session: it logs in (the daemon's nodes retry
/// with backoff until they get in or are told to log out), brings the node's LUN mappings up, and when the
/// connection is lost reinstates the session with the same ISID, with the same backoff, while the core holds the
/// outstanding commands and re-issues them: clients see a pause. Once the replacement timeout passes, held and new
/// commands fail (EIO) while reconnecting goes on, and I/O works again as soon as the target is back.
/// Every wait (backoff, replacement timeout, NOP-Out interval) runs on the injected <see cref="TimeProvider"/>.
/// </summary>
public sealed partial class NodeSupervisor : IAsyncDisposable
{
    private readonly DaemonSettings _settings;
    private readonly string _initiatorName;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SharedResources _shared;
    private readonly SemaphoreSlim _gate = new(1, 1); // one login attempt, logout, map, unmap or rescan at a time
    private readonly Lock _lock = new(); // guards every field below
    private NodeState _state = NodeState.LoggedOut;
    private IscsiSession? _session;
    private TransportChoice? _choice;
    private string? _lastError;
    private int _reconnects;
    private Isid? _isid;
    private CancellationTokenSource? _lifetime; // the loop's, from Start or ConnectAsync to the logout
    private Task _loop = Task.CompletedTask;
    private Task _pinger = Task.CompletedTask;
    private TaskCompletionSource _firstAttempt = NewSignal();
    private TaskCompletionSource _retryNow = NewSignal();
    private TaskCompletionSource<string> _lost = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="time">The clock of backoff, replacement timeout and NOP-Out pings; tests pass a fake one.</param>
    public NodeSupervisor(NodeSettings node, string initiatorName, DaemonSettings settings, SharedResources shared,
        ILoggerFactory loggerFactory, TimeProvider? time = null)
    {
        _settings = settings;
        _initiatorName = initiatorName;
        _shared = shared;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<NodeSupervisor>();
        _time = time ?? TimeProvider.System;
        Node = node;
        Luns = new NodeLunMappings(this, settings, shared, loggerFactory);
        Metrics.DaemonMetrics.Register(this);
    }

    /// <summary>The node's settings in force (a reload may change its LUN mappings).</summary>
    public NodeSettings Node { get; internal set; }

    /// <summary>The LUNs of the node that are wanted and those that are up.</summary>
    public NodeLunMappings Luns { get; }

    public NodeState State { get { lock (_lock) return _state; } }

    /// <summary>Why the last login or reconnect failed; null while logged in.</summary>
    public string? LastError { get { lock (_lock) return _lastError; } }

    public int Reconnects { get { lock (_lock) return _reconnects; } }

    /// <summary>The transport the session logged in over (kept across reinstatements), once logged in.</summary>
    public TransportChoice? Transport { get { lock (_lock) return _choice; } }

    public string TransportName => Transport?.Name ?? "";

    /// <summary>The session, once logged in (it stays the same object across reinstatements).</summary>
    public IscsiSession? Session { get { lock (_lock) return _session; } }

    /// <summary>Completes after the first login attempt (and the mappings it brought up), whatever its outcome.</summary>
    public Task FirstAttempt { get { lock (_lock) return _firstAttempt.Task; } }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The daemon's way: logs in in the background, retrying with backoff, then supervises the session.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_lifetime != null) return;
            _lifetime = new CancellationTokenSource();
            _state = NodeState.LoggingIn;
            _firstAttempt = NewSignal();
            _loop = SuperviseAsync(loggedIn: false, _lifetime.Token);
        }
    }

    /// <summary><c>export</c>'s way: one login attempt now, whose failure is thrown (the core's login errors: target not
    /// found, authentication, ...); once in, the session is supervised (reinstated after a loss) until the logout.</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken)
    {
        CancellationTokenSource lifetime;
        lock (_lock)
        {
            if (_lifetime != null) throw new InvalidOperationException($"{Node.Name} is already {_state.ToDisplayString()}");
            lifetime = _lifetime = new CancellationTokenSource();
            _state = NodeState.LoggingIn;
        }
        try
        {
            using var cancel = cancellationToken.Register(lifetime.Cancel);
            await LoginOnceAsync(lifetime.Token).ConfigureAwait(false);
        }
        catch
        {
            await lifetime.CancelAsync().ConfigureAwait(false);
            lock (_lock)
            {
                _lifetime = null;
                _state = NodeState.LoggedOut;
            }
            lifetime.Dispose();
            throw;
        }
        lock (_lock) _loop = SuperviseAsync(loggedIn: true, lifetime.Token);
    }

    private async Task SuperviseAsync(bool loggedIn, CancellationToken stop)
    {
        await Task.Yield();
        try
        {
            for (var attempt = 0; !loggedIn; attempt++)
            {
                loggedIn = await TryLoginAsync(stop).ConfigureAwait(false);
                lock (_lock) _firstAttempt.TrySetResult();
                if (!loggedIn) await BackOffAsync(attempt, "login failed", stop).ConfigureAwait(false);
            }
            while (true)
            {
                Task<string> lost;
                lock (_lock) lost = _lost.Task;
                var reason = await lost.WaitAsync(stop).ConfigureAwait(false);
                await ReinstateAsync(reason, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        finally
        {
            lock (_lock) _firstAttempt.TrySetResult(); // a stopped loop must not leave anyone waiting for an attempt
        }
    }

    /// <summary>One login attempt, then the wanted LUN mappings; false (the reason in <see cref="LastError"/>) if the login failed.</summary>
    private async Task<bool> TryLoginAsync(CancellationToken stop)
    {
        await _gate.WaitAsync(stop).ConfigureAwait(false);
        try
        {
            try
            {
                await LoginOnceAsync(stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
            {
                return false; // LastError says why; the backoff logs it
            }
            await Luns.MapWantedAsync(stop).ConfigureAwait(false); // each LUN's failure is reported and kept by the mappings
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task LoginOnceAsync(CancellationToken stop)
    {
        lock (_lock) _state = NodeState.LoggingIn;
        IscsiSession session;
        try
        {
            // The node's ISID is kept across restarts, so that this login reinstates (and fences) a predecessor's session.
            _isid ??= NodeIsidStore.Default.GetOrCreate(Node.Name, $"{Node.Target}@{string.Join(',', Node.Portals.Select(p => $"{p.Host}:{p.Port}"))}", _logger);
            var options = SessionOptionsBuilder.Build(Node, _initiatorName, _settings) with { Isid = _isid.Value };
            (session, var choice) = await new TransportChooser(_shared.TcpOptions, devices: _shared.IserDevices, loggerFactory: _loggerFactory)
                .LoginAsync(Node.Transport, options, stop).ConfigureAwait(false);
            lock (_lock) _choice = choice;
        }
        catch (Exception e)
        {
            lock (_lock) _lastError = e is IscsiException ? e.Message : $"{e.GetType().Name}: {e.Message}";
            throw;
        }
        session.ConnectionLost += OnConnectionLost;
        session.ReportedLunsChanged += Luns.Rescan.OnReportedLunsChanged;
        lock (_lock)
        {
            _session = session;
            _state = NodeState.LoggedIn;
            _lastError = null;
            _lost = new(TaskCreationOptions.RunContinuationsAsynchronously);
            _pinger = PingLoopAsync(session, stop);
        }
        LogLoggedIn(Node.Target, session.Portal.Address, session.Isid.ToString(), session.Tsih, session.TransportName);
        // A connection lost between the login and the subscription above raised no event for us.
        if (session.State is IscsiSessionState.ConnectionLost or IscsiSessionState.Failed)
            SignalLoss(session, "connection lost right after login");
    }

    /// <summary>Waits the backoff delay for <paramref name="attempt"/>, or less if <c>iserblockctl login</c> says try now.</summary>
    private async Task BackOffAsync(int attempt, string what, CancellationToken stop)
    {
        var delay = _settings.Reconnect.DelayFor(attempt);
        TaskCompletionSource retry;
        lock (_lock) retry = _retryNow;
        try
        {
            var wait = Task.Delay(delay, _time, stop);
            LogRetrying(Node.Name, what, attempt + 1, LastError ?? "", delay.TotalSeconds); // after the timer is set (tests advance fake time on it)
            await Task.WhenAny(wait, retry.Task).ConfigureAwait(false);
            stop.ThrowIfCancellationRequested();
        }
        finally
        {
            lock (_lock) if (_retryNow == retry && retry.Task.IsCompleted) _retryNow = NewSignal();
        }
    }

    private void OnConnectionLost(object? sender, IscsiConnectionLostEventArgs e)
    {
        if (sender is IscsiSession session) SignalLoss(session, e.Reason.Message);
    }

    private void SignalLoss(IscsiSession session, string reason)
    {
        lock (_lock)
        {
            if (_session != session || _state != NodeState.LoggedIn || _lifetime == null) return;
            _state = NodeState.Recovering;
            _lastError = reason;
            _lost.TrySetResult(reason);
        }
        LogLost(Node.Target, reason, _settings.ReplacementTimeout.TotalSeconds);
    }

    private async Task ReinstateAsync(string reason, CancellationToken stop)
    {
        var session = Session!;
        var started = _time.GetTimestamp();
        using var replacement = new CancellationTokenSource(_settings.ReplacementTimeout, _time);
        using var onReplacementTimeout = replacement.Token.Register(() => GiveUpHeldCommands(session));
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await session.ReinstateAsync(stop).ConfigureAwait(false);
                lock (_lock)
                {
                    _state = NodeState.LoggedIn;
                    _lastError = null;
                    _reconnects++;
                    _lost = new(TaskCreationOptions.RunContinuationsAsynchronously);
                }
                LogReinstated(Node.Target, session.Portal.Address, _time.GetElapsedTime(started).TotalSeconds, attempt + 1, reason);
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
            {
                lock (_lock) _lastError = e.Message;
            }
            await BackOffAsync(attempt, "reconnect failed", stop).ConfigureAwait(false);
        }
    }

    /// <summary>The replacement timeout passed: what the session holds fails now (EIO to clients), and
    /// so does new I/O until a reconnect succeeds.</summary>
    private void GiveUpHeldCommands(IscsiSession session)
    {
        lock (_lock)
        {
            if (_state != NodeState.Recovering) return;
            _state = NodeState.Failed;
        }
        try
        {
            session.FailOutstandingCommands(new IscsiConnectionLostException(
                $"no connection to {Node.Target} for {_settings.ReplacementTimeout.TotalSeconds:0.#} s (replacement timeout)"));
            LogReplacementTimeout(Node.Target, _settings.ReplacementTimeout.TotalSeconds);
        }
        catch (InvalidOperationException)
        {
            // Reconnected at this very moment: nothing to give up.
        }
    }

    private async Task PingLoopAsync(IscsiSession session, CancellationToken stop)
    {
        if (_settings.NopInterval <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(_settings.NopInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                if (State != NodeState.LoggedIn) continue;
                // Any PDU received counts as life; a ping goes out only after nopInterval of silence.
                if (!await session.ProbeLivenessAsync(_settings.NopInterval, _settings.NopTimeout, stop).ConfigureAwait(false))
                {
                    LogSilentTarget(Node.Target, _settings.NopTimeout.TotalSeconds);
                    SignalLoss(session, $"no NOP-In answer (and no other PDU) within {_settings.NopTimeout.TotalSeconds:0.#} s");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Opens <paramref name="lun"/> as the block device the NBD side serves: its payloads in the session's
    /// registered memory on iSER (<see cref="SessionBuffers"/>), else in <paramref name="tcpBuffers"/>.</summary>
    public async Task<ScsiLunBlockDevice> OpenBlockDeviceAsync(int lun, bool readOnly, IBlockBufferProvider tcpBuffers, CancellationToken cancellationToken)
    {
        var session = Session ?? throw new InvalidOperationException($"{Node.Name} is not logged in");
        var scsiLun = await session.OpenLunAsync((ulong)lun, cancellationToken).ConfigureAwait(false);
        var (buffers, maxTransfer) = SessionBuffers.For(Transport, tcpBuffers, ScsiLunBlockDevice.MaxRequestBytes);
        return await ScsiLunBlockDevice.CreateAsync(scsiLun, readOnly, buffers, cancellationToken, maxTransfer).ConfigureAwait(false);
    }

    /// <summary>Where the session stands, read at once (for <c>list</c> and <c>show</c>).</summary>
    internal (NodeState State, IscsiSession? Session, TransportChoice? Transport, string? LastError, int Reconnects) Snapshot()
    {
        lock (_lock) return (_state, _session, _choice, _lastError, _reconnects);
    }

    /// <param name="detailed">Add what <c>show</c> and <c>stats</c> need: negotiated keys, command window, per-kind LUN figures.</param>
    public SessionInfo Describe(bool detailed = false) => SessionDetails.Describe(this, detailed);

    /// <summary>Runs <paramref name="operation"/> alone (no login attempt, logout, map or rescan meanwhile).</summary>
    internal async Task<T> SerializedAsync<T>(Func<CancellationToken, Task<T>> operation, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await operation(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary><c>iserblockctl login NODE</c>: logs in now (or makes a retrying login try again now) and says how it went.</summary>
    public async Task<ControlSocketResponse> LoginAsync(CancellationToken cancellationToken)
    {
        Task attempt;
        lock (_lock)
        {
            if (_state is NodeState.LoggedIn or NodeState.Recovering or NodeState.Failed)
                return ControlSocketResponse.Failure(ControlErrorCodes.AlreadyDone, $"{Node.Name} is already logged in ({_state.ToDisplayString()})");
            if (_lifetime == null)
            {
                Start();
            }
            else
            {
                if (_firstAttempt.Task.IsCompleted) _firstAttempt = NewSignal();
                _retryNow.TrySetResult();
            }
            attempt = _firstAttempt.Task;
        }
        await attempt.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (State is NodeState.LoggedIn)
        {
            var errors = Luns.Errors();
            return errors.Count == 0
                ? ControlSocketResponse.Success($"Logged in to {Node.Target} ({Node.Name})")
                : ControlSocketResponse.Failure(ControlErrorCodes.MapFailed, $"logged in to {Node.Target}, but {string.Join("; ", errors)}");
        }
        var error = LastError ?? "unknown error";
        return ControlSocketResponse.Failure(error.Contains("authentication", StringComparison.OrdinalIgnoreCase)
            ? ControlErrorCodes.AuthenticationFailed : ControlErrorCodes.LoginFailed, $"login to {Node.Target} failed: {error} (still retrying)");
    }

    /// <summary><c>iserblockctl logout NODE</c>: unmaps every LUN (refused while a kernel device is in use), flushes, logs out.</summary>
    public Task<ControlSocketResponse> LogoutAsync(CancellationToken cancellationToken) => SerializedAsync(async ct =>
    {
        if (Luns.DeviceInUse() is { } why)
            return ControlSocketResponse.Failure(ControlErrorCodes.LogoutFailed, $"cannot log out of {Node.Name}: {why}; unmount or close it first");
        if (State == NodeState.LoggedOut)
            return ControlSocketResponse.Failure(ControlErrorCodes.AlreadyDone, $"{Node.Name} is not logged in");
        await StopLoopAsync().ConfigureAwait(false);
        await Luns.StopAllAsync(keepDevicesInUse: false, ct).ConfigureAwait(false);
        await LogoutSessionAsync(ct).ConfigureAwait(false);
        return ControlSocketResponse.Success($"Logged out of {Node.Target} ({Node.Name})");
    }, cancellationToken);

    /// <summary>Daemon stop: stops the exports, leaves kernel devices that are in use configured for the next
    /// daemon (detaching the others), flushes every LUN and logs out, within <paramref name="cancellationToken"/>.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await StopLoopAsync().ConfigureAwait(false);
        await Luns.StopAllAsync(keepDevicesInUse: true, cancellationToken).ConfigureAwait(false);
        await LogoutSessionAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Logs the session out (for <c>export</c>, after it withdrew its LUN): stops pinging and reconnecting,
    /// waits for outstanding commands (bounded by <paramref name="cancellationToken"/>), sends the Logout.</summary>
    public async Task LogoutSessionAsync(CancellationToken cancellationToken)
    {
        await StopLoopAsync().ConfigureAwait(false);
        IscsiSession? session;
        lock (_lock)
        {
            if (_session == null)
            {
                _state = NodeState.LoggedOut;
                return;
            }
            _state = NodeState.LoggingOut;
            session = _session;
        }
        session.ConnectionLost -= OnConnectionLost;
        session.ReportedLunsChanged -= Luns.Rescan.OnReportedLunsChanged;
        try
        {
            await session.LogoutAsync(cancellationToken).ConfigureAwait(false);
            LogLoggedOut(Node.Target);
        }
        catch (Exception e)
        {
            LogLogoutFailed(Node.Target, e.Message);
        }
        finally
        {
            await session.DisposeAsync().ConfigureAwait(false);
            Transport?.Iser?.Dispose(); // the session's own protection domain and pools, where it has them
        }
        lock (_lock)
        {
            _session = null;
            _state = NodeState.LoggedOut;
        }
    }

    /// <summary>Ends the loop (logging in, waiting to retry, or watching the session) and the pings.</summary>
    private async Task StopLoopAsync()
    {
        CancellationTokenSource? lifetime;
        Task loop, pinger;
        lock (_lock)
        {
            lifetime = _lifetime;
            loop = _loop;
            pinger = _pinger;
            _lifetime = null;
            if (_session == null) _state = NodeState.LoggedOut;
        }
        if (lifetime == null) return;
        await lifetime.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(loop, pinger).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        lifetime.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        Metrics.DaemonMetrics.Unregister(this);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await StopAsync(timeout.Token).ConfigureAwait(false);
        _gate.Dispose();
    }

    [LoggerMessage(LogLevel.Warning, "{Node}: {What} (attempt {Attempt}: {Reason}); retrying in {Delay} s")]
    private partial void LogRetrying(string node, string what, int attempt, string reason, double delay);

    [LoggerMessage(LogLevel.Information, "Logged in to {Target} at {Portal} (ISID {Isid}, TSIH {Tsih}, {Transport})")]
    private partial void LogLoggedIn(string target, string portal, string isid, ushort tsih, string transport);

    [LoggerMessage(LogLevel.Warning, "Connection to {Target} lost ({Reason}); reinstating the session, I/O is held for up to {Seconds} s")]
    private partial void LogLost(string target, string reason, double seconds);

    [LoggerMessage(LogLevel.Information, "Session to {Target} reinstated at {Portal} after {Seconds:0.0} s ({Attempts} attempt(s)) lost to {Reason}; held commands re-issued")]
    private partial void LogReinstated(string target, string portal, double seconds, int attempts, string reason);

    [LoggerMessage(LogLevel.Error, "{Target}: replacement timeout ({Seconds} s) passed: held and new I/O fails with EIO until the target is back (still reconnecting)")]
    private partial void LogReplacementTimeout(string target, double seconds);

    [LoggerMessage(LogLevel.Warning, "{Target} did not answer a NOP-Out within {Seconds} s: treating the connection as dead")]
    private partial void LogSilentTarget(string target, double seconds);

    [LoggerMessage(LogLevel.Information, "Logged out of {Target}")]
    private partial void LogLoggedOut(string target);

    [LoggerMessage(LogLevel.Warning, "Logout from {Target} failed: {Reason}")]
    private partial void LogLogoutFailed(string target, string reason);
}
