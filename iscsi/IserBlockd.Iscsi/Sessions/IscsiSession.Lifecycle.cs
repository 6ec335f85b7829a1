using System.Diagnostics;
using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.ConnectionPort;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>The session's connections: login, loss, reinstatement, a target's logout request, logout and disposal.</summary>
public sealed partial class IscsiSession
{
    private long _reconnectNotBefore;

    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        var (connection, portal, outcome) = await _login.RunAsync(cancellationToken).ConfigureAwait(false);
        Activate(connection, portal, outcome);
    }

    private void Activate(IIscsiConnection transportConnection, IscsiPortal portal, LoginOutcome outcome)
    {
        var connection = new FullFeaturePhase(this, transportConnection, outcome.Parameters!, outcome.ExpStatSN, _logger);
        int requeued;
        lock (_lock)
        {
            requeued = _tasks.ActivateLocked(connection, outcome.CmdSN, outcome.ExpCmdSN, outcome.MaxCmdSN);
            _connection = connection;
            Tsih = outcome.Tsih;
            Portal = portal;
            Parameters = outcome.Parameters!;
            _state = IscsiSessionState.LoggedIn;
            _failFast = false;
            _connectionRun = RunConnectionAsync(connection);
        }
        SessionLog.LoggedIn(_logger, TargetDescription, portal, _transport.Name, Options.Isid, outcome.Tsih, outcome.Parameters);
        SessionLog.CommandWindow(_logger, outcome.CmdSN, outcome.ExpCmdSN, outcome.MaxCmdSN);
        if (requeued > 0) SessionLog.Reissuing(_logger, requeued);
        connection.SignalWriter();
    }

    private async Task RunConnectionAsync(FullFeaturePhase connection)
    {
        await Task.Yield();
        var error = await connection.RunAsync().ConfigureAwait(false);
        OnConnectionEnded(connection, error);
    }

    private void OnConnectionEnded(FullFeaturePhase connection, Exception? error)
    {
        List<ScsiTask> toFail = [];
        Exception taskError;
        var retained = 0;
        var raise = false;
        lock (_lock)
        {
            if (_connection != connection) return;
            _connection = null;
            if (error == null || _state is IscsiSessionState.LoggingOut or IscsiSessionState.Disposed or IscsiSessionState.LoggedOut)
            {
                if (_state != IscsiSessionState.Disposed) _state = IscsiSessionState.LoggedOut;
                taskError = new IscsiSessionClosedException($"the session to {TargetDescription} was logged out");
                toFail = _tasks.TakeAllLocked(detach: true);
            }
            else if (Options.RetainCommandsOnConnectionLoss && !_failFast)
            {
                _state = IscsiSessionState.ConnectionLost;
                taskError = error;
                retained = _tasks.RetainLocked();
                raise = true;
            }
            else
            {
                _state = IscsiSessionState.Failed;
                taskError = new IscsiConnectionLostException($"connection to {Portal} lost: {error.Message}", error);
                toFail = _tasks.TakeAllLocked(detach: true);
                raise = true;
            }
        }
        if (error != null && raise)
            SessionLog.ConnectionFailed(_logger, Portal, TargetDescription, error.Message, retained > 0 ? retained : toFail.Count, retained > 0 ? "kept for reinstatement" : "failed");
        else
            SessionLog.ConnectionClosed(_logger, Portal, TargetDescription);
        foreach (var t in toFail) FailTask(t, taskError);
        _controls.FailAll(new IscsiConnectionLostException($"connection to {Portal} closed", error));
        if (raise && error != null)
        {
            var handler = ConnectionLost;
            var args = new IscsiConnectionLostEventArgs(error, retained > 0 ? retained : toFail.Count, retained > 0);
            if (handler != null) ThreadPool.UnsafeQueueUserWorkItem(_ => handler(this, args), null);
        }
    }

    /// <summary>
    /// The target announced that it drops the connection or session (asynchronous event 2 or 3): a new login waits
    /// DefaultTime2Wait (its Parameter2) before it may go out.
    /// </summary>
    internal void DelayReconnect(TimeSpan time2Wait)
    {
        if (time2Wait <= TimeSpan.Zero) return;
        Interlocked.Exchange(ref _reconnectNotBefore, Stopwatch.GetTimestamp() + TaskLifecycle.ToTicks(time2Wait));
    }

    /// <summary>
    /// ERL0 session reinstatement (RFC 7143 §6.3.5): logs in again with the same ISID and TSIH 0, which makes the
    /// target drop the old session, then re-issues every retained command (block I/O is idempotent) before new ones.
    /// Waits out a Time2Wait the target announced.
    /// </summary>
    public async Task ReinstateAsync(CancellationToken cancellationToken = default)
    {
        FullFeaturePhase? old;
        lock (_lock)
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
            lock (_lock)
            {
                if (_state is IscsiSessionState.ConnectionLost or IscsiSessionState.Failed) _state = IscsiSessionState.Reinstating;
                else throw new InvalidOperationException($"cannot reinstate a session that is {_state}");
            }
        }
        try
        {
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), Interlocked.Read(ref _reconnectNotBefore));
            if (wait > TimeSpan.Zero)
            {
                SessionLog.WaitingTime2Wait(_logger, wait.TotalSeconds);
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            }
            await ConnectAsync(cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref Counters.Reinstatements);
        }
        catch
        {
            lock (_lock)
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
        FullFeaturePhase? connection;
        lock (_lock) connection = _state == IscsiSessionState.LoggedIn ? _connection : null;
        connection?.Fail(new IscsiConnectionLostException(reason));
    }

    /// <summary>
    /// Gives up on commands retained after a connection loss (the replacement timeout expired): they fail with
    /// <paramref name="reason"/>, and new commands fail at once until <see cref="ReinstateAsync"/> succeeds.
    /// </summary>
    public void FailOutstandingCommands(Exception reason)
    {
        List<ScsiTask> toFail;
        lock (_lock)
        {
            if (_state is IscsiSessionState.LoggedIn or IscsiSessionState.LoggingOut)
                throw new InvalidOperationException("the session is connected; its commands are still in flight");
            _failFast = true;
            toFail = _tasks.TakeAllLocked(detach: false);
            if (_state == IscsiSessionState.ConnectionLost) _state = IscsiSessionState.Failed;
        }
        foreach (var t in toFail) FailTask(t, reason);
    }

    /// <summary>
    /// The target asked for a logout (asynchronous event 1): no new command goes out; the ones in flight get until the
    /// target's deadline (at most <see cref="IscsiSessionOptions.AbortTimeout"/>) to finish; then we log out, and the
    /// connection ends as a loss so that the owner reinstates the session, where the held commands go out.
    /// </summary>
    internal void OnLogoutRequested(FullFeaturePhase connection, TimeSpan deadline)
    {
        lock (_lock)
        {
            if (_connection != connection) return;
            _tasks.HoldCommandsLocked();
        }
        _ = Task.Run(async () =>
        {
            var wait = deadline > TimeSpan.Zero && deadline < Options.AbortTimeout ? deadline : Options.AbortTimeout;
            var until = Stopwatch.GetTimestamp() + TaskLifecycle.ToTicks(wait);
            while (_tasks.SentCount(connection) > 0 && Stopwatch.GetTimestamp() < until && !connection.IsFailed)
                await Task.Delay(20).ConfigureAwait(false);
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await LogoutExchange.RunAsync(this, connection, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                SessionLog.TargetLogoutIncomplete(_logger, e.Message);
            }
            connection.Fail(new IscsiConnectionLostException("the target requested a logout"));
        });
    }

    /// <summary>Asynchronous event 4: the target wants <paramref name="keys"/> renegotiated.</summary>
    internal void StartRenegotiation(IReadOnlyList<KeyValuePair<string, string>> keys) => _ = Task.Run(async () =>
    {
        try { await TextExchange.RenegotiateAsync(this, keys, _logger).ConfigureAwait(false); }
        catch (Exception e) { SessionLog.RenegotiationFailed(_logger, e.Message); }
    });

    /// <summary>The target rejected a command because it waits for our logout: the command waits for the next connection.</summary>
    internal void HoldForReconnect(uint itt)
    {
        var task = _tasks.Find(itt);
        if (task == null) return;
        lock (_lock) _tasks.HoldCommandsLocked();
        if (_tasks.TryRequeue(task, delayed: true, out var connection, out var holdsBuffer) && holdsBuffer)
            connection?.Transport.ReleaseTask(task.Itt);
    }

    /// <summary>Waits for outstanding commands, then logs the session out (reason: close the session).</summary>
    public async Task LogoutAsync(CancellationToken cancellationToken = default)
    {
        FullFeaturePhase? connection;
        Task drained;
        lock (_lock)
        {
            if (_state is IscsiSessionState.LoggedOut or IscsiSessionState.Disposed) return;
            if (_state != IscsiSessionState.LoggedIn)
            {
                // No connection: nothing to say to the target; what was retained fails.
                _state = IscsiSessionState.LoggedOut;
                connection = null;
                drained = Task.CompletedTask;
            }
            else
            {
                _state = IscsiSessionState.LoggingOut;
                connection = _connection!;
                drained = _tasks.DrainedLocked();
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
            try
            {
                var response = await LogoutExchange.RunAsync(this, connection, cancellationToken).ConfigureAwait(false);
                if (response != LogoutResponse.ClosedSuccessfully)
                    SessionLog.LogoutAnswered(_logger, TargetDescription, response);
            }
            catch (IscsiConnectionLostException e) when (!cancellationToken.IsCancellationRequested)
            {
                // Drained above, so nothing is lost: istgt now and then closes instead of answering a Logout, and
                // a closed connection ends the session at the target all the same.
                SessionLog.LogoutAnswerLost(_logger, TargetDescription, e.Message);
            }
            connection.MarkLoggedOut();
        }
        finally
        {
            connection.Fail(new IscsiSessionClosedException("logged out"));
            await _connectionRun.ConfigureAwait(false);
            lock (_lock)
            {
                if (_state != IscsiSessionState.Disposed) _state = IscsiSessionState.LoggedOut;
            }
        }
        SessionLog.LoggedOut(_logger, TargetDescription);
    }

    private void FailAll(Exception reason)
    {
        List<ScsiTask> toFail;
        lock (_lock) toFail = _tasks.TakeAllLocked(detach: false);
        foreach (var t in toFail) FailTask(t, reason);
    }

    /// <summary>Logs out if still logged in (bounded wait), then closes the connection and fails what is left.</summary>
    public async ValueTask DisposeAsync()
    {
        bool loggedIn;
        lock (_lock)
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
                SessionLog.DisposeLogoutFailed(_logger, e.Message);
            }
        }
        FullFeaturePhase? connection;
        lock (_lock)
        {
            _state = IscsiSessionState.Disposed;
            connection = _connection;
        }
        await _escalation.DisposeAsync().ConfigureAwait(false);
        connection?.Fail(new IscsiSessionClosedException("session disposed"));
        await _connectionRun.ConfigureAwait(false);
        FailAll(new IscsiSessionClosedException($"the session to {TargetDescription} was disposed"));
    }
}
