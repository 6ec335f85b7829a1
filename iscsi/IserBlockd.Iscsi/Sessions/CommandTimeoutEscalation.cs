using System.Diagnostics;
using IserBlockd.Iscsi.Pdu;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// Command timeouts and their escalation, as the Linux SCSI/iSCSI error handler: a sent command past
/// <see cref="IscsiSessionOptions.CommandTimeout"/> is aborted (ABORT TASK); an abort not confirmed within
/// <see cref="IscsiSessionOptions.AbortTimeout"/> escalates to a LOGICAL UNIT RESET; a reset not confirmed within
/// <see cref="IscsiSessionOptions.ResetTimeout"/> drops the connection, which makes the owner reinstate the session
/// (same ISID: the target ends every task of the old one). Commands the target ended are re-issued or failed by
/// <see cref="IscsiSession"/>; nothing is re-issued while its earlier instance could still execute.
/// </summary>
/// <remarks>
/// An abort counts as confirmed when the target answers Function Complete, or Task Does Not Exist while its
/// ExpCmdSN is already past the command's CmdSN (it completed, or the target counted it as received per RFC 7143
/// §11.5.1 and will drop a late copy). Task Does Not Exist with the CmdSN still missing means the command may yet
/// arrive: that is not a confirmation.
/// </remarks>
internal sealed partial class CommandTimeoutEscalation : IAsyncDisposable
{
    private readonly IscsiSession _session;
    private readonly TaskLifecycle _tasks;
    private readonly IscsiSessionOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TimedOutTask> _expired = [];
    private readonly Task _loop;

    public CommandTimeoutEscalation(IscsiSession session, TaskLifecycle tasks, IscsiSessionOptions options, ILogger logger)
    {
        _session = session;
        _tasks = tasks;
        _options = options;
        _logger = logger;
        _loop = options.CommandTimeout > TimeSpan.Zero ? RunAsync() : Task.CompletedTask;
    }

    private async Task RunAsync()
    {
        var tick = TimeSpan.FromTicks(Math.Clamp(_options.CommandTimeout.Ticks / 4, TimeSpan.FromMilliseconds(50).Ticks, TimeSpan.FromSeconds(1).Ticks));
        using var timer = new PeriodicTimer(tick);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                _expired.Clear();
                _tasks.CollectTimedOut(Stopwatch.GetTimestamp(), _expired);
                if (_expired.Count == 0) continue;
                try
                {
                    await EscalateAsync([.. _expired]).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !_stop.IsCancellationRequested)
                {
                    LogEscalationFailed(e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task EscalateAsync(List<TimedOutTask> expired)
    {
        var seconds = _options.CommandTimeout.TotalSeconds;
        foreach (var t in expired)
        {
            Interlocked.Increment(ref _session.Counters.CommandTimeouts);
            LogTimedOut(t.Task.CommandName, t.Lun, t.Task.Lba?.ToString() ?? "-", t.Itt, t.CmdSN, seconds);
        }
        var confirmed = await Task.WhenAll(expired.Select(AbortAsync)).ConfigureAwait(false);
        var drop = false;
        foreach (var group in expired.Where((_, i) => !confirmed[i]).GroupBy(t => (t.Lun, t.Connection)))
        {
            if (!await ResetAsync(group.Key.Lun, group.Key.Connection, [.. group]).ConfigureAwait(false)) drop = true;
        }
        if (!drop) return;
        Interlocked.Increment(ref _session.Counters.ConnectionDrops);
        LogDropping(_session.Portal.ToString());
        foreach (var connection in expired.Select(t => t.Connection).Distinct())
            connection.Fail(new IscsiConnectionLostException("a command timed out and neither ABORT TASK nor LOGICAL UNIT RESET ended it; reinstating the session"));
    }

    private async Task<bool> AbortAsync(TimedOutTask t)
    {
        Interlocked.Increment(ref _session.Counters.Aborts);
        TaskManagementResponse response;
        try
        {
            using var timeout = new CancellationTokenSource(_options.AbortTimeout);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stop.Token);
            response = await TaskManagementExchange.RunAsync(_session, t.Connection, TaskManagementFunction.AbortTask, t.Lun, t.Itt, t.CmdSN, linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (!_stop.IsCancellationRequested)
        {
            LogAbortUnanswered(t.Task.CommandName, t.Lun, t.Itt, e is OperationCanceledException ? $"no answer within {_options.AbortTimeout.TotalSeconds:0.#} s" : e.Message);
            return false;
        }
        var received = _tasks.TargetHasReceived(t.CmdSN);
        if (response == TaskManagementResponse.FunctionComplete || (response == TaskManagementResponse.TaskDoesNotExist && received))
        {
            var ended = _tasks.EndAtTarget(t.Task, t.Itt, t.Connection, _options.MaxTimeoutReissues);
            LogAborted(t.Task.CommandName, t.Lun, t.Itt, response.ToString(), ended.Task == null ? "had completed" : ended.Reissued ? "re-issued" : "failed");
            if (ended.Task != null) _session.FinishEnded(ended, $"timed out after {_options.CommandTimeout.TotalSeconds:0.#} s and was aborted");
            return true;
        }
        LogAbortNotConfirmed(t.Task.CommandName, t.Lun, t.Itt, response.ToString(), received);
        return false;
    }

    private async Task<bool> ResetAsync(ulong lun, FullFeaturePhase connection, List<TimedOutTask> tasks)
    {
        Interlocked.Increment(ref _session.Counters.LunResets);
        _tasks.MarkResetting(lun, connection);
        LogResetting(lun, tasks.Count);
        TaskManagementResponse response;
        try
        {
            using var timeout = new CancellationTokenSource(_options.ResetTimeout);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stop.Token);
            response = await TaskManagementExchange.RunAsync(_session, connection, TaskManagementFunction.LogicalUnitReset, lun,
                BasicHeaderSegment.ReservedTag, 0, linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (!_stop.IsCancellationRequested)
        {
            LogResetFailed(lun, e is OperationCanceledException ? $"no answer within {_options.ResetTimeout.TotalSeconds:0.#} s" : e.Message);
            return false;
        }
        if (response != TaskManagementResponse.FunctionComplete)
        {
            LogResetFailed(lun, $"the target answered {response}");
            return false;
        }
        // A command the target never received is not ended by the reset: it could still arrive and execute.
        if (tasks.Any(t => !_tasks.TargetHasReceived(t.CmdSN)))
        {
            LogResetFailed(lun, "a timed-out command never reached the target (its CmdSN is still missing)");
            return false;
        }
        var ended = _session.EndLunTasks(lun, connection, "was ended by a LOGICAL UNIT RESET");
        LogReset(lun, ended.Reissued, ended.Failed);
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    [LoggerMessage(LogLevel.Warning, "{Command} on LUN {Lun} at LBA {Lba} (ITT 0x{Itt:x8}, CmdSN {CmdSN}) timed out after {Seconds} s; sending ABORT TASK")]
    private partial void LogTimedOut(string command, ulong lun, string lba, uint itt, uint cmdSN, double seconds);

    [LoggerMessage(LogLevel.Warning, "ABORT TASK for {Command} on LUN {Lun} (ITT 0x{Itt:x8}): {Response}; the command {Outcome}")]
    private partial void LogAborted(string command, ulong lun, uint itt, string response, string outcome);

    [LoggerMessage(LogLevel.Warning, "ABORT TASK for {Command} on LUN {Lun} (ITT 0x{Itt:x8}) failed: {Reason}")]
    private partial void LogAbortUnanswered(string command, ulong lun, uint itt, string reason);

    [LoggerMessage(LogLevel.Warning, "ABORT TASK for {Command} on LUN {Lun} (ITT 0x{Itt:x8}) answered {Response} (target has the command: {Received}): not confirmed")]
    private partial void LogAbortNotConfirmed(string command, ulong lun, uint itt, string response, bool received);

    [LoggerMessage(LogLevel.Warning, "LUN {Lun}: {Count} timed-out command(s) not confirmed aborted; sending LOGICAL UNIT RESET")]
    private partial void LogResetting(ulong lun, int count);

    [LoggerMessage(LogLevel.Warning, "LUN {Lun}: LOGICAL UNIT RESET done; {Reissued} command(s) re-issued, {Failed} failed")]
    private partial void LogReset(ulong lun, int reissued, int failed);

    [LoggerMessage(LogLevel.Error, "LUN {Lun}: LOGICAL UNIT RESET failed: {Reason}")]
    private partial void LogResetFailed(ulong lun, string reason);

    [LoggerMessage(LogLevel.Error, "dropping the connection to {Portal}: timed-out commands could not be ended otherwise; the session will be reinstated")]
    private partial void LogDropping(string portal);

    [LoggerMessage(LogLevel.Error, "command timeout escalation failed: {Reason}")]
    private partial void LogEscalationFailed(string reason);
}
