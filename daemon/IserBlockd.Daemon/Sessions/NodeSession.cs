using IserBlockd.BlockDev;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Identity;
using IserBlockd.Daemon.Luns;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Transport.Iser;
using IserBlockd.Transport.Selection;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Sessions;

/// <summary>
/// The session supervisor of one node (error recovery level 0, as every Linux initiator): logs in,
/// pings the target with NOP-Out, and when the connection is lost reinstates the session with the same
/// ISID, with exponential backoff, while the core holds the outstanding commands and re-issues them.
/// Clients see a pause. Once the replacement timeout passes, held and new commands fail (EIO) while
/// reconnecting goes on, and I/O works again as soon as the target is back.
/// </summary>
public sealed partial class NodeSession : IAsyncDisposable
{
    private readonly DaemonSettings _settings;
    private readonly string _initiatorName;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private Isid? _isid;
    private readonly Lock _lock = new();
    private IscsiSession? _session;
    private NodeState _state = NodeState.LoggedOut;
    private CancellationTokenSource? _lifetime;
    private bool _recovering;
    private Task _recovery = Task.CompletedTask;
    private Task _pinger = Task.CompletedTask;
    private string? _lastError;
    private DateTime? _lostAt;
    private int _reconnects;
    private string _transportName = "";
    private TransportChoice? _choice;
    private readonly IserDeviceRegistry? _iserDevices;

    /// <param name="iserDevices">Registered memory for iSER sessions (the daemon sizes it from the configuration);
    /// null: the process-wide registry with the default pool sizes.</param>
    public NodeSession(NodeSettings node, string initiatorName, DaemonSettings settings, ILoggerFactory loggerFactory,
        IserDeviceRegistry? iserDevices = null)
    {
        _iserDevices = iserDevices;
        Node = node;
        _initiatorName = initiatorName;
        _settings = settings;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<NodeSession>();
        Metrics.DaemonMetrics.Register(this);
    }

    public NodeSettings Node { get; }

    public NodeState State { get { lock (_lock) return _state; } }

    /// <summary>Why the last login or reconnect failed; null while logged in.</summary>
    public string? LastError { get { lock (_lock) return _lastError; } }

    public int Reconnects { get { lock (_lock) return _reconnects; } }

    /// <summary>When the connection was lost, while recovering.</summary>
    public DateTime? LostAt { get { lock (_lock) return _lostAt; } }

    public string TransportName { get { lock (_lock) return _transportName; } }

    /// <summary>The transport the session logged in over (kept across reinstatements), once logged in.</summary>
    public TransportChoice? Transport { get { lock (_lock) return _choice; } }

    /// <summary>The session, once logged in (it stays the same object across reinstatements).</summary>
    public IscsiSession? Session { get { lock (_lock) return _session; } }

    /// <summary>Logs in, trying the portals in order. Throws the core's login errors (target not found, authentication, ...).</summary>
    public async Task LoginAsync(CancellationToken cancellationToken)
    {
        CancellationTokenSource lifetime;
        lock (_lock)
        {
            if (_state != NodeState.LoggedOut)
                throw new InvalidOperationException($"{Node.Name} is already {_state.ToDisplayString()}");
            _state = NodeState.LoggingIn;
            lifetime = _lifetime = new CancellationTokenSource();
        }
        IscsiSession session;
        try
        {
            // The node's ISID is kept across restarts, so that this login reinstates (and fences) a predecessor's session.
            _isid ??= NodeIsidStore.Default.GetOrCreate(Node.Name, $"{Node.Target}@{string.Join(',', Node.Portals.Select(p => $"{p.Host}:{p.Port}"))}", _logger);
            var options = SessionOptionsBuilder.Build(Node, _initiatorName, _settings) with { Isid = _isid.Value };
            var (loggedIn, choice) = await new TransportChooser(devices: _iserDevices, loggerFactory: _loggerFactory)
                .LoginAsync(Node.Transport, options, cancellationToken).ConfigureAwait(false);
            session = loggedIn;
            lock (_lock)
            {
                _transportName = choice.Name;
                _choice = choice;
            }
        }
        catch (Exception e)
        {
            lock (_lock)
            {
                _state = NodeState.LoggedOut;
                _lastError = e.Message;
                _lifetime = null;
            }
            lifetime.Dispose();
            throw;
        }
        session.ConnectionLost += OnConnectionLost;
        lock (_lock)
        {
            _session = session;
            _state = NodeState.LoggedIn;
            _lastError = null;
            _pinger = PingLoopAsync(session, lifetime.Token);
        }
        LogLoggedIn(Node.Target, session.Portal.Address, session.Isid.ToString(), session.Tsih, session.TransportName);
        // A connection lost between the login and the subscription above raised no event for us.
        if (session.State is IscsiSessionState.ConnectionLost or IscsiSessionState.Failed)
            StartRecovery(session, "connection lost right after login");
    }

    /// <summary>Opens (probes) a LUN of the logged-in session.</summary>
    public Task<ScsiLun> OpenLunAsync(int lun, CancellationToken cancellationToken)
    {
        var session = Session ?? throw new InvalidOperationException($"{Node.Name} is not logged in");
        return session.OpenLunAsync((ulong)lun, cancellationToken);
    }

    /// <summary>Opens <paramref name="lun"/> as the block device the NBD side serves: its payloads in the session's
    /// registered memory on iSER (<see cref="SessionBuffers"/>), else in <paramref name="tcpBuffers"/>.</summary>
    public async Task<ScsiLunBlockDevice> OpenBlockDeviceAsync(int lun, bool readOnly, IBlockBufferProvider tcpBuffers, CancellationToken cancellationToken)
    {
        var scsiLun = await OpenLunAsync(lun, cancellationToken).ConfigureAwait(false);
        var (buffers, maxTransfer) = SessionBuffers.For(Transport, tcpBuffers, ScsiLunBlockDevice.MaxRequestBytes);
        return await ScsiLunBlockDevice.CreateAsync(scsiLun, readOnly, buffers, cancellationToken, maxTransfer).ConfigureAwait(false);
    }

    private void OnConnectionLost(object? sender, IscsiConnectionLostEventArgs e)
    {
        if (sender is IscsiSession session) StartRecovery(session, e.Reason.Message);
    }

    private void StartRecovery(IscsiSession session, string reason)
    {
        CancellationToken lifetime;
        lock (_lock)
        {
            if (_session != session || _recovering || _state is not (NodeState.LoggedIn) || _lifetime == null) return;
            _recovering = true;
            _state = NodeState.Recovering;
            _lostAt = DateTime.UtcNow;
            _lastError = reason;
            lifetime = _lifetime.Token;
            _recovery = RecoverAsync(session, lifetime);
        }
        LogLost(Node.Target, reason, _settings.ReplacementTimeout.TotalSeconds);
    }

    private async Task RecoverAsync(IscsiSession session, CancellationToken lifetime)
    {
        await Task.Yield();
        var started = DateTime.UtcNow;
        using var replacement = new CancellationTokenSource(_settings.ReplacementTimeout);
        using var onReplacementTimeout = replacement.Token.Register(() => GiveUpHeldCommands(session));
        for (var attempt = 0; !lifetime.IsCancellationRequested; attempt++)
        {
            try
            {
                await session.ReinstateAsync(lifetime).ConfigureAwait(false);
                lock (_lock)
                {
                    _recovering = false;
                    _state = NodeState.LoggedIn;
                    _lastError = null;
                    _lostAt = null;
                    _reconnects++;
                }
                LogReinstated(Node.Target, session.Portal.Address, (DateTime.UtcNow - started).TotalSeconds, attempt + 1);
                return;
            }
            catch (OperationCanceledException) when (lifetime.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                var delay = _settings.Reconnect.DelayFor(attempt);
                lock (_lock) _lastError = e.Message;
                LogReconnectFailed(Node.Target, attempt + 1, e.Message, delay.TotalSeconds);
                try
                {
                    await Task.Delay(delay, lifetime).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
        lock (_lock) _recovering = false;
    }

    /// <summary>The replacement timeout passed: what the session holds fails now (EIO to clients), and
    /// so does new I/O until a reconnect succeeds.</summary>
    private void GiveUpHeldCommands(IscsiSession session)
    {
        lock (_lock)
        {
            if (!_recovering) return;
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

    private async Task PingLoopAsync(IscsiSession session, CancellationToken lifetime)
    {
        if (_settings.NopInterval <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(_settings.NopInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(lifetime).ConfigureAwait(false))
            {
                if (State != NodeState.LoggedIn) continue;
                // Any PDU received counts as life; a ping goes out only after nopInterval of silence.
                if (!await session.ProbeLivenessAsync(_settings.NopInterval, _settings.NopTimeout, lifetime).ConfigureAwait(false))
                {
                    LogSilentTarget(Node.Target, _settings.NopTimeout.TotalSeconds);
                    StartRecovery(session, $"no NOP-In answer (and no other PDU) within {_settings.NopTimeout.TotalSeconds:0.#} s");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Logs out: stops pinging and reconnecting, waits for outstanding commands (bounded by
    /// <paramref name="cancellationToken"/>), sends the Logout, closes the connection.</summary>
    public async Task LogoutAsync(CancellationToken cancellationToken)
    {
        IscsiSession? session;
        CancellationTokenSource? lifetime;
        Task recovery, pinger;
        lock (_lock)
        {
            if (_state is NodeState.LoggedOut or NodeState.LoggingOut) return;
            _state = NodeState.LoggingOut;
            session = _session;
            lifetime = _lifetime;
            recovery = _recovery;
            pinger = _pinger;
        }
        if (lifetime != null) await lifetime.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(recovery, pinger).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (session != null)
        {
            session.ConnectionLost -= OnConnectionLost;
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
            }
        }
        lock (_lock)
        {
            _session = null;
            _state = NodeState.LoggedOut;
            _lifetime = null;
            _recovering = false;
        }
        lifetime?.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        Metrics.DaemonMetrics.Unregister(this);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await LogoutAsync(timeout.Token).ConfigureAwait(false);
    }

    [LoggerMessage(LogLevel.Information, "Logged in to {Target} at {Portal} (ISID {Isid}, TSIH {Tsih}, {Transport})")]
    private partial void LogLoggedIn(string target, string portal, string isid, ushort tsih, string transport);

    [LoggerMessage(LogLevel.Warning, "Connection to {Target} lost ({Reason}); reinstating the session, I/O is held for up to {Seconds} s")]
    private partial void LogLost(string target, string reason, double seconds);

    [LoggerMessage(LogLevel.Warning, "{Target}: reconnect attempt {Attempt} failed: {Reason}; next in {Delay} s")]
    private partial void LogReconnectFailed(string target, int attempt, string reason, double delay);

    [LoggerMessage(LogLevel.Information, "Session to {Target} reinstated at {Portal} after {Seconds:0.0} s ({Attempts} attempt(s)); held commands re-issued")]
    private partial void LogReinstated(string target, string portal, double seconds, int attempts);

    [LoggerMessage(LogLevel.Error, "{Target}: replacement timeout ({Seconds} s) passed: held and new I/O fails with EIO until the target is back (still reconnecting)")]
    private partial void LogReplacementTimeout(string target, double seconds);

    [LoggerMessage(LogLevel.Warning, "{Target} did not answer a NOP-Out within {Seconds} s: treating the connection as dead")]
    private partial void LogSilentTarget(string target, double seconds);

    [LoggerMessage(LogLevel.Information, "Logged out of {Target}")]
    private partial void LogLoggedOut(string target);

    [LoggerMessage(LogLevel.Warning, "Logout from {Target} failed: {Reason}")]
    private partial void LogLogoutFailed(string target, string reason);
}
