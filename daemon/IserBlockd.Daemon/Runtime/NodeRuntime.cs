using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Control;
using IserBlockd.Daemon.Luns;
using IserBlockd.Daemon.Mappings;
using IserBlockd.Daemon.Sessions;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Login;
using IserBlockd.Transport.Selection;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Runtime;

/// <summary>
/// One node in the running daemon: its session supervisor, the LUN mappings wanted for it (from the
/// configuration and from <c>iserblockctl map</c>) and those that are up. It keeps trying to log in
/// (with backoff) until it succeeds or is told to log out, and brings the mappings up after each login.
/// </summary>
public sealed partial class NodeRuntime : IAsyncDisposable
{
    private readonly DaemonSettings _settings;
    private readonly SharedResources _shared;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1); // one login/logout/map/unmap at a time
    private readonly List<LunMapping> _wanted;
    private readonly Dictionary<int, MappedLun> _mapped = [];
    private readonly Dictionary<int, string> _mapErrors = [];
    private CancellationTokenSource? _loginLoop;
    private Task _loginTask = Task.CompletedTask;
    private TaskCompletionSource _firstAttempt = NewSignal();
    private TaskCompletionSource _retryNow = NewSignal();

    public NodeRuntime(NodeSettings node, string initiatorName, DaemonSettings settings, SharedResources shared, ILoggerFactory loggerFactory)
    {
        Node = node;
        _settings = settings;
        _shared = shared;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<NodeRuntime>();
        _wanted = [.. node.Luns];
        Session = new NodeSession(node, initiatorName, settings, loggerFactory, shared.IserDevices);
    }

    /// <summary>The node's settings in force (a reload may change its LUN mappings).</summary>
    public NodeSettings Node { get; private set; }

    public NodeSession Session { get; }

    /// <summary>Completes after the first login attempt (and the mappings it brought up), whatever its outcome.</summary>
    public Task FirstAttempt => _firstAttempt.Task;

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Starts logging in (in the background, retrying with backoff).</summary>
    public void Start()
    {
        lock (_mapped)
        {
            if (_loginLoop != null) return;
            _loginLoop = new CancellationTokenSource();
            _firstAttempt = NewSignal();
            _loginTask = LoginLoopAsync(_loginLoop.Token);
        }
    }

    private async Task LoginLoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await LoginUntilDoneAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _firstAttempt.TrySetResult(); // a stopped loop must not leave anyone waiting for an attempt
        }
    }

    private async Task LoginUntilDoneAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        for (var attempt = 0; !cancellationToken.IsCancellationRequested; attempt++)
        {
            Exception? failure = null;
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await Session.LoginAsync(cancellationToken).ConfigureAwait(false);
                if (Session.Session is { } loggedIn) loggedIn.ReportedLunsChanged += OnReportedLunsChanged;
                await MapWantedAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                failure = e;
            }
            finally
            {
                _gate.Release();
                _firstAttempt.TrySetResult();
            }
            if (failure == null) return;

            var delay = _settings.Reconnect.DelayFor(attempt);
            LogLoginFailed(Node.Name, Describe(failure), delay.TotalSeconds);
            var retry = _retryNow;
            try
            {
                await Task.WhenAny(Task.Delay(delay, cancellationToken), retry.Task).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.CompareExchange(ref _retryNow, NewSignal(), retry);
            }
        }
    }

    /// <summary>Maps every wanted LUN that is not up yet; a LUN that fails is reported and the others go on.</summary>
    private async Task MapWantedAsync(CancellationToken cancellationToken)
    {
        List<LunMapping> wanted;
        lock (_mapped) wanted = [.. _wanted.Where(m => !_mapped.ContainsKey(m.Lun))];
        foreach (var mapping in wanted)
        {
            try
            {
                await MapOneAsync(mapping, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                lock (_mapped) _mapErrors[mapping.Lun] = e.Message;
                LogMapFailed(Node.Name, mapping.Lun, e.Message);
            }
        }
    }

    private async Task<MappedLun> MapOneAsync(LunMapping mapping, CancellationToken cancellationToken)
    {
        var device = await Session.OpenBlockDeviceAsync(mapping.Lun, mapping.ReadOnly, _shared.Buffers, cancellationToken).ConfigureAwait(false);
        var backend = KernelDeviceOptions.BackendIdentifierFor(Node.Target, mapping.Lun);
        var kernel = new KernelDeviceOptions(_settings.KernelNbdTimeout, backend, _settings.KernelNbdConnections)
        {
            Method = _settings.KernelNbdMethod,
            UblkQueueDepth = _settings.UblkQueueDepth,
        };
        var mapped = await MappedLun.StartAsync(Node.Name, mapping, device, _shared.Endpoints, kernel, _shared.ServerOptions, _loggerFactory, cancellationToken).ConfigureAwait(false);
        lock (_mapped)
        {
            _mapped[mapping.Lun] = mapped;
            _mapErrors.Remove(mapping.Lun);
        }
        return mapped;
    }

    /// <summary><c>iserblockctl login NODE</c>: logs in now (or makes a retrying login try again now) and says how it went.</summary>
    public async Task<ControlSocketResponse> LoginAsync(CancellationToken cancellationToken)
    {
        if (Session.State is NodeState.LoggedIn or NodeState.Recovering or NodeState.Failed)
            return ControlSocketResponse.Failure(ControlErrorCodes.AlreadyDone, $"{Node.Name} is already logged in ({Session.State.ToDisplayString()})");
        Task attempt;
        lock (_mapped)
        {
            if (_loginLoop == null)
            {
                Start();
                attempt = _firstAttempt.Task;
            }
            else
            {
                _firstAttempt = _firstAttempt.Task.IsCompleted ? NewSignal() : _firstAttempt;
                attempt = _firstAttempt.Task;
                _retryNow.TrySetResult();
            }
        }
        await attempt.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (Session.State is NodeState.LoggedIn)
        {
            string[] errors;
            lock (_mapped) errors = [.. _mapErrors.Select(e => $"LUN {e.Key}: {e.Value}")];
            return errors.Length == 0
                ? ControlSocketResponse.Success($"Logged in to {Node.Target} ({Node.Name})")
                : ControlSocketResponse.Failure(ControlErrorCodes.MapFailed, $"logged in to {Node.Target}, but {string.Join("; ", errors)}");
        }
        var error = Session.LastError ?? "unknown error";
        return ControlSocketResponse.Failure(error.Contains("authentication", StringComparison.OrdinalIgnoreCase)
            ? ControlErrorCodes.AuthenticationFailed : ControlErrorCodes.LoginFailed, $"login to {Node.Target} failed: {error} (still retrying)");
    }

    /// <summary><c>iserblockctl logout NODE</c>: unmaps every LUN (refused while a kernel device is in use), flushes, logs out.</summary>
    public async Task<ControlSocketResponse> LogoutAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            List<MappedLun> mapped;
            lock (_mapped) mapped = [.. _mapped.Values];
            foreach (var m in mapped)
            {
                if (m.IsDeviceInUse(out var why))
                    return ControlSocketResponse.Failure(ControlErrorCodes.LogoutFailed, $"cannot log out of {Node.Name}: {why}; unmount or close it first");
            }
            if (Session.State == NodeState.LoggedOut && _loginLoop == null)
                return ControlSocketResponse.Failure(ControlErrorCodes.AlreadyDone, $"{Node.Name} is not logged in");
            await StopLoginLoopAsync().ConfigureAwait(false);
            foreach (var m in mapped)
                await m.StopAsync(keepDeviceInUse: false, flush: true, cancellationToken).ConfigureAwait(false);
            lock (_mapped)
            {
                _mapped.Clear();
                _mapErrors.Clear();
            }
            await Session.LogoutAsync(cancellationToken).ConfigureAwait(false);
            return ControlSocketResponse.Success($"Logged out of {Node.Target} ({Node.Name})");
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary><c>iserblockctl map</c>: exposes one more LUN (kept across reconnects, not written to the configuration file).</summary>
    public async Task<ControlSocketResponse> MapAsync(LunMapping mapping, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            lock (_mapped)
            {
                if (_mapped.ContainsKey(mapping.Lun))
                    return ControlSocketResponse.Failure(ControlErrorCodes.AlreadyDone, $"LUN {mapping.Lun} of {Node.Name} is already mapped");
            }
            if (Session.State is not (NodeState.LoggedIn or NodeState.Recovering))
                return ControlSocketResponse.Failure(ControlErrorCodes.MapFailed, $"{Node.Name} is not logged in ({Session.State.ToDisplayString()}); iserblockctl login {Node.Name}");
            MappedLun mapped;
            try
            {
                mapped = await MapOneAsync(mapping, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return ControlSocketResponse.Failure(IsMissingLun(e) ? ControlErrorCodes.NotFound : ControlErrorCodes.MapFailed,
                    $"cannot map LUN {mapping.Lun} of {Node.Name}: {e.Message}");
            }
            lock (_mapped)
            {
                _wanted.RemoveAll(m => m.Lun == mapping.Lun);
                _wanted.Add(mapping);
            }
            var where = mapped.DevicePath is { } path ? [path, .. mapped.Exports] : mapped.Exports;
            return ControlSocketResponse.Success($"Mapped LUN {mapping.Lun} of {Node.Name}: {string.Join(", ", where)}");
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary><c>iserblockctl unmap</c>: withdraws a LUN's exports and device (refused while the device is in use) and flushes it.</summary>
    public async Task<ControlSocketResponse> UnmapAsync(int lun, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            MappedLun? mapped;
            lock (_mapped) _mapped.TryGetValue(lun, out mapped);
            if (mapped == null)
            {
                bool wanted;
                lock (_mapped) wanted = _wanted.RemoveAll(m => m.Lun == lun) > 0;
                return wanted
                    ? ControlSocketResponse.Success($"LUN {lun} of {Node.Name} will not be mapped")
                    : ControlSocketResponse.Failure(ControlErrorCodes.NotFound, $"LUN {lun} of {Node.Name} is not mapped");
            }
            if (mapped.IsDeviceInUse(out var why))
                return ControlSocketResponse.Failure(ControlErrorCodes.Busy, $"cannot unmap LUN {lun} of {Node.Name}: {why}; unmount or close it first");
            await mapped.StopAsync(keepDeviceInUse: false, flush: true, cancellationToken).ConfigureAwait(false);
            lock (_mapped)
            {
                _mapped.Remove(lun);
                _wanted.RemoveAll(m => m.Lun == lun);
            }
            return ControlSocketResponse.Success($"Unmapped LUN {lun} of {Node.Name}");
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary><c>iserblockctl luns NODE</c>: the LUNs the target reports now, through the node's session, and which are mapped.</summary>
    public async Task<ControlSocketResponse> LunsAsync(CancellationToken cancellationToken)
    {
        if (Session.State != NodeState.LoggedIn || Session.Session is not { } session)
            return ControlSocketResponse.Failure(ControlErrorCodes.NotConnected, $"{Node.Name} is not logged in ({Session.State.ToDisplayString()})");
        var luns = await LunSurvey.DescribeAsync(session, cancellationToken).ConfigureAwait(false);
        lock (_mapped)
        {
            foreach (var lun in luns)
            {
                if (!_mapped.TryGetValue(lun.Lun, out var mapped)) continue;
                lun.Mapped = true;
                lun.Device = mapped.DevicePath;
                lun.Exports = [.. mapped.Exports];
            }
        }
        return new ControlSocketResponse { Ok = true, Luns = luns };
    }

    /// <summary>Reload: the node's session settings are unchanged but its LUN mappings differ. Mappings gone or changed
    /// are withdrawn (not while their device is in use: reported in <paramref name="refused"/>), new ones come up.</summary>
    public async Task<List<string>> ApplyMappingsAsync(NodeSettings updated, List<string> refused, CancellationToken cancellationToken)
    {
        var done = new List<string>();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var inForce = new List<LunMapping>(updated.Luns);
            foreach (var old in Node.Luns.Where(m => !updated.Luns.Contains(m)))
            {
                MappedLun? mapped;
                lock (_mapped) _mapped.TryGetValue(old.Lun, out mapped);
                if (mapped != null && mapped.IsDeviceInUse(out var why))
                {
                    refused.Add($"{Node.Name} LUN {old.Lun} kept as it was: {why}");
                    inForce.RemoveAll(m => m.Lun == old.Lun);
                    inForce.Add(old);
                    continue;
                }
                if (mapped != null) await mapped.StopAsync(keepDeviceInUse: false, flush: true, cancellationToken).ConfigureAwait(false);
                lock (_mapped)
                {
                    _mapped.Remove(old.Lun);
                    _mapErrors.Remove(old.Lun);
                    _wanted.RemoveAll(m => m.Lun == old.Lun);
                }
                if (!updated.Luns.Any(m => m.Lun == old.Lun)) done.Add($"{Node.Name} LUN {old.Lun}: unmapped");
            }
            foreach (var mapping in updated.Luns.Where(m => !Node.Luns.Contains(m) && inForce.Contains(m)))
            {
                lock (_mapped) _wanted.Add(mapping);
                if (Session.State is not (NodeState.LoggedIn or NodeState.Recovering))
                {
                    done.Add($"{Node.Name} LUN {mapping.Lun}: mapped once the node is logged in");
                    continue;
                }
                try
                {
                    await MapOneAsync(mapping, cancellationToken).ConfigureAwait(false);
                    done.Add($"{Node.Name} LUN {mapping.Lun}: " + (Node.Luns.Any(m => m.Lun == mapping.Lun) ? "mapping redone" : "mapped"));
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    lock (_mapped) _mapErrors[mapping.Lun] = e.Message;
                    LogMapFailed(Node.Name, mapping.Lun, e.Message);
                    refused.Add($"{Node.Name} LUN {mapping.Lun}: cannot map: {e.Message}");
                }
            }
            Node = updated with { Luns = [.. inForce.OrderBy(m => m.Lun)] };
            return done;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <param name="detailed">Add what <c>show</c> and <c>stats</c> need: negotiated keys, command window, per-kind LUN figures.</param>
    public SessionInfo Describe(bool detailed = false)
    {
        var session = Session.Session;
        var info = new SessionInfo
        {
            Node = Node.Name,
            Target = Node.Target,
            Portal = session?.Portal.Address ?? Node.Portals[0].ToString(),
            Transport = Session.TransportName.Length > 0 ? Session.TransportName : Node.Transport.ToName(),
            // Between the attempts of a login that keeps failing, the session is logged out but the node is not.
            State = Session.State == NodeState.LoggedOut && Retrying ? NodeState.LoggingIn.ToDisplayString() : Session.State.ToDisplayString(),
            Isid = session?.Isid.ToString(),
            Tsih = session?.Tsih,
            LastError = Session.LastError,
            Reconnects = Session.Reconnects,
        };
        if (detailed) SessionDetails.AddTo(info, session, Session.Transport?.Reason);
        lock (_mapped)
        {
            foreach (var wanted in _wanted.OrderBy(m => m.Lun))
            {
                if (_mapped.TryGetValue(wanted.Lun, out var m))
                {
                    var device = (ScsiLunBlockDevice)m.Device;
                    var s = device.Statistics;
                    info.Luns.Add(new LunInfo
                    {
                        Lun = wanted.Lun,
                        State = m.DeviceLost ? "device disconnected outside iserblockd"
                            : Session.State switch { NodeState.Recovering => "paused", NodeState.Failed => "failed", _ => "up" },
                        Device = m.DevicePath,
                        Exports = [.. m.Exports],
                        SizeBytes = device.Geometry.Size,
                        BlockSize = device.Geometry.LogicalBlockSize,
                        ReadOnly = device.Features.HasFlag(IserBlockd.BlockDev.BlockDeviceFeatures.ReadOnly),
                        Counters = new LunCounters
                        {
                            Reads = s.Reads, Writes = s.Writes, BytesRead = s.BytesRead, BytesWritten = s.BytesWritten,
                            Flushes = s.Flushes, Trims = s.Trims, Errors = s.Errors, InFlight = s.InFlight,
                        },
                    });
                    if (detailed) SessionDetails.AddTo(info.Luns[^1], device);
                }
                else
                {
                    info.Luns.Add(new LunInfo
                    {
                        Lun = wanted.Lun,
                        State = _mapErrors.TryGetValue(wanted.Lun, out var error) ? "error: " + error
                            : Session.State == NodeState.LoggedOut ? (Retrying ? "waiting for login" : "down") : "starting",
                        Device = wanted.Device?.ToString(),
                        ReadOnly = wanted.ReadOnly,
                    });
                }
            }
        }
        return info;
    }

    /// <summary>The login loop is running (logging in, or waiting to try again).</summary>
    private bool Retrying { get { lock (_mapped) return _loginLoop != null && !_loginTask.IsCompleted; } }

    public int MappedCount { get { lock (_mapped) return _mapped.Count; } }

    public int FailedMappings { get { lock (_mapped) return _mapErrors.Count; } }

    private async Task StopLoginLoopAsync()
    {
        CancellationTokenSource? loop;
        Task task;
        lock (_mapped)
        {
            loop = _loginLoop;
            task = _loginTask;
            _loginLoop = null;
        }
        if (loop == null) return;
        await loop.CancelAsync().ConfigureAwait(false);
        await task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        loop.Dispose();
    }

    /// <summary>Daemon stop: stops the exports, leaves kernel devices that are in use configured for the next
    /// daemon (detaching the others), flushes every LUN and logs out, within <paramref name="cancellationToken"/>.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await StopLoginLoopAsync().ConfigureAwait(false);
        List<MappedLun> mapped;
        lock (_mapped) mapped = [.. _mapped.Values];
        await Task.WhenAll(mapped.Select(m => m.StopAsync(keepDeviceInUse: true, flush: true, cancellationToken))).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        lock (_mapped) _mapped.Clear();
        await Session.LogoutAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await StopAsync(timeout.Token).ConfigureAwait(false);
        await Session.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
    }

    /// <summary>The target has no such LUN (ILLEGAL REQUEST 25/00, or nothing connected there): the same exit code as inquiry's.</summary>
    private static bool IsMissingLun(Exception e) =>
        e is IserBlockd.Iscsi.Scsi.ScsiCommandException { Sense: { Key: IserBlockd.Iscsi.Scsi.SenseKey.IllegalRequest, AdditionalSenseCode: 0x25 } }
        || (e is IscsiException && e.Message.Contains("is not connected", StringComparison.Ordinal));

    private static string Describe(Exception e) => e switch
    {
        IscsiLoginException or IscsiException => e.Message,
        _ => $"{e.GetType().Name}: {e.Message}",
    };

    [LoggerMessage(LogLevel.Warning, "{Node}: login failed: {Reason}; retrying in {Delay} s")]
    private partial void LogLoginFailed(string node, string reason, double delay);

    [LoggerMessage(LogLevel.Error, "{Node} LUN {Lun}: cannot map: {Reason}")]
    private partial void LogMapFailed(string node, int lun, string reason);
}
