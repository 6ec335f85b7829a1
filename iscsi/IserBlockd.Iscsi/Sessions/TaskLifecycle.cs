using System.Diagnostics;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// The life of every SCSI task of a session, in one place: queued (waiting for the window or a connection) → sent
/// (CmdSN taken, deadline set) → completed; or, past its deadline, timed out → aborting → resetting → re-issued or
/// failed. Owns the task table, the command queue and the CmdSN window, all under one gate (the session's lock), so
/// the connection's loops and the session never touch them directly.
/// </summary>
/// <remarks>
/// A task is re-issued only once its earlier instance can no longer execute at the target: the ABORT TASK was
/// confirmed, the LU reset ended it, or the connection it went out on is gone and the session is reinstated.
/// </remarks>
internal sealed class TaskLifecycle
{
    private readonly object _gate;
    private readonly TaskTable _table;
    private readonly Queue<ScsiTask> _queue;
    private readonly long _commandTimeoutTicks;
    private CommandWindow _window;
    private FullFeaturePhase? _connection;
    private bool _holdCommands;
    private long _nextSequence;
    private TaskCompletionSource? _drained;

    public TaskLifecycle(object gate, int capacity, TimeSpan commandTimeout)
    {
        _gate = gate;
        _table = new TaskTable(capacity);
        // sized for the whole window up front, so that the first burst of commands does not grow it
        _queue = new Queue<ScsiTask>(Math.Min(capacity, 1024));
        _commandTimeoutTicks = ToTicks(commandTimeout);
    }

    public static long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    public int Count { get { lock (_gate) return _table.Count; } }

    public int Capacity => _table.Capacity;

    public int QueuedCount { get { lock (_gate) return _queue.Count; } }

    /// <summary>The target's ExpCmdSN as last reported.</summary>
    public uint ExpCmdSN { get { lock (_gate) return _window.ExpCmdSN; } }

    /// <summary>The window as it stands: the next CmdSN, ExpCmdSN and MaxCmdSN (for diagnostics).</summary>
    public (uint CmdSN, uint ExpCmdSN, uint MaxCmdSN) WindowNow { get { lock (_gate) return (_window.CmdSN, _window.ExpCmdSN, _window.MaxCmdSN); } }

    // ---------------------------------------------------------------- queued

    /// <summary>Adds a new task at the back of the queue. Caller holds the gate.</summary>
    public bool TryAddLocked(ScsiTask task, long now)
    {
        if (!_table.TryAdd(task)) return false;
        task.State = ScsiTaskState.Queued;
        task.Recovery = TaskRecovery.None;
        task.Sequence = _nextSequence++;
        task.RetryUntil = now + _commandTimeoutTicks;
        _queue.Enqueue(task);
        return true;
    }

    /// <summary>
    /// A new connection is in full feature phase: commands go out on it, in the window the login reported, the
    /// retained ones first in their original order. Returns how many were retained. Caller holds the gate.
    /// </summary>
    public int ActivateLocked(FullFeaturePhase connection, uint cmdSN, uint expCmdSN, uint maxCmdSN)
    {
        _window.Reset(cmdSN, expCmdSN, maxCmdSN);
        _connection = connection;
        _holdCommands = false;
        var pending = _table.Snapshot().Where(t => t.State == ScsiTaskState.Queued).OrderBy(t => t.Sequence).ToList();
        _queue.Clear();
        foreach (var t in pending)
        {
            t.Delayed = false;
            t.Recovery = TaskRecovery.None;
            _queue.Enqueue(t);
        }
        return pending.Count;
    }

    /// <summary>No new command goes out until the next connection (the target asked for a logout). Caller holds the gate.</summary>
    public void HoldCommandsLocked() => _holdCommands = true;

    // ---------------------------------------------------------------- sent

    /// <summary>Writer side: the next command for <paramref name="connection"/>, with its CmdSN and deadline;
    /// <paramref name="more"/> says whether another may be ready now (false: the writer can stop asking until it is
    /// signalled again, which every enqueue and window change does).</summary>
    public bool TryTakeCommand(FullFeaturePhase connection, out ScsiTask task, out bool more)
    {
        task = null!;
        more = false;
        lock (_gate)
        {
            if (connection != _connection || _holdCommands) return false;
            while (_queue.TryPeek(out var next))
            {
                if (next.State != ScsiTaskState.Queued || next.Delayed)
                {
                    _queue.Dequeue(); // cancelled while queued, or waiting out a BUSY (it comes back by itself)
                    continue;
                }
                if (!_window.IsOpen) return false;
                _queue.Dequeue();
                next.CmdSN = _window.Take();
                next.State = ScsiTaskState.Sent;
                next.Connection = connection;
                connection.Owed.Sent(next);
                next.Deadline = Stopwatch.GetTimestamp() + _commandTimeoutTicks;
                next.TransportHoldsBuffer = next.Buffer.Length > 0;
                task = next;
                more = _queue.Count > 0 && _window.IsOpen;
                return true;
            }
        }
        return false;
    }

    /// <summary>The CmdSN for a PDU: the next one without taking it (immediate), or taken (non-immediate, when the window is open).</summary>
    public bool TryTakeCmdSN(bool immediate, out uint cmdSN)
    {
        lock (_gate)
        {
            cmdSN = _window.CmdSN;
            if (immediate) return true;
            if (!_window.IsOpen) return false;
            _window.Take();
            return true;
        }
    }

    /// <summary>Applies ExpCmdSN/MaxCmdSN; true when commands wait for the window that just grew.</summary>
    public bool UpdateWindow(uint expCmdSN, uint maxCmdSN)
    {
        lock (_gate) return _window.Update(expCmdSN, maxCmdSN) && _queue.Count > 0;
    }

    /// <summary>The Sent task <paramref name="itt"/> on <paramref name="connection"/>; caller holds the gate.</summary>
    public ScsiTask? FindSentLocked(uint itt, FullFeaturePhase connection)
    {
        var task = _table.Find(itt);
        return task != null && task.State == ScsiTaskState.Sent && task.Connection == connection ? task : null;
    }

    public ScsiTask? Find(uint itt)
    {
        lock (_gate) return _table.Find(itt);
    }

    /// <summary>The target has the task's CmdSN (ExpCmdSN is past it): a late copy of the command would be dropped.</summary>
    public bool TargetHasReceived(uint cmdSN)
    {
        lock (_gate) return SerialNumber.GreaterThan(_window.ExpCmdSN, cmdSN);
    }

    /// <summary>Checks a Data-In against its task and returns where its data goes.</summary>
    public ScsiTask BeginDataIn(FullFeaturePhase connection, in DataInPdu d, bool dataPduInOrder, out Memory<byte> destination)
    {
        var length = d.DataSegmentLength;
        lock (_gate)
        {
            var task = FindSentLocked(d.InitiatorTaskTag, connection) ?? throw Unknown("Data-In", d.InitiatorTaskTag);
            if (task.Direction != ScsiDataDirection.Read)
                throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8}, a {task.CommandName} that reads nothing");
            if ((long)d.BufferOffset + length > task.TransferLength)
                throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8} at offset {d.BufferOffset} with {length} bytes overruns the {task.TransferLength}-byte buffer");
            if (d.DataSN != task.NextDataSN)
                throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8} has DataSN {d.DataSN}, expected {task.NextDataSN}");
            if (dataPduInOrder && d.BufferOffset != (uint)task.DataInBytes)
                throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8} at offset {d.BufferOffset}, expected {task.DataInBytes} (DataPDUInOrder=Yes)");
            task.NextDataSN++;
            destination = task.Buffer.Slice((int)d.BufferOffset, length);
            // Until EndDataIn (or AbandonDataIn), ends from other threads are deferred: see ScsiTask.ReceivingDataIn.
            task.ReceivingDataIn = true;
            return task;
        }
    }

    /// <summary>
    /// The data of a Data-In has landed in the task's buffer. In the same acquisition of the gate: the window the PDU
    /// carries is applied, and when <paramref name="retireIfWhole"/> (the final Data-In, GOOD, no residual) and the task
    /// has every byte it asked for, the task is retired (the caller then finishes it with
    /// <see cref="IscsiSession.FinishRetired"/>).
    /// </summary>
    public DataInEnd EndDataIn(ScsiTask task, int length, uint expCmdSN, uint maxCmdSN, bool retireIfWhole)
    {
        lock (_gate)
        {
            var windowGrew = _window.Update(expCmdSN, maxCmdSN) && _queue.Count > 0;
            if (EndReceivingLocked(task) is { } endedMeanwhile) return endedMeanwhile with { WakeWriter = windowGrew || endedMeanwhile.WakeWriter };
            if (task.State == ScsiTaskState.Sent) task.Connection?.Owed.Landed(length);
            var received = task.DataInBytes += length;
            if (!retireIfWhole || received != task.TransferLength || task.State != ScsiTaskState.Sent)
                return new DataInEnd(received, windowGrew, Retired: false, null, false);
            var end = new DataInEnd(received, windowGrew, Retired: true, task.Connection, task.TransportHoldsBuffer);
            RetireLocked(task);
            return end;
        }
    }

    /// <summary>The receive loop stopped in the middle of a Data-In segment (its connection failed): nothing lands in the
    /// task's buffer any more, so an end recorded meanwhile is carried out now.</summary>
    public DataInEnd AbandonDataIn(ScsiTask task)
    {
        lock (_gate) return EndReceivingLocked(task) ?? default;
    }

    /// <summary>
    /// The receive loop is done with the task's buffer. When the task was ended meanwhile, the Data-In belonged to an
    /// instance that no longer exists: its bytes are not counted, and the recorded end is carried out (the task goes
    /// back to the queue, or is retired for the caller to fail with <see cref="DataInEnd.Failure"/>). Caller holds the gate.
    /// </summary>
    private DataInEnd? EndReceivingLocked(ScsiTask task)
    {
        task.ReceivingDataIn = false;
        if (task.DeferredFailure is { } failure)
        {
            var end = new DataInEnd(0, false, Retired: true, task.Connection, task.TransportHoldsBuffer, EndedMeanwhile: true, failure);
            task.DeferredFailure = null;
            task.DeferredRequeue = false;
            RetireLocked(task);
            return end;
        }
        if (!task.DeferredRequeue) return null;
        task.DeferredRequeue = false;
        _queue.Enqueue(task);
        return new DataInEnd(0, WakeWriter: true, Retired: false, null, false, EndedMeanwhile: true, null);
    }

    /// <summary>The sent task a SCSI Response (or other task PDU) names; a protocol error when there is none.</summary>
    public ScsiTask FindSent(uint itt, FullFeaturePhase connection, string what)
    {
        lock (_gate) return FindSentLocked(itt, connection) ?? throw Unknown(what, itt);
    }

    /// <summary>Checks an R2T against its task and counts it outstanding; returns the task.</summary>
    public ScsiTask AcceptR2T(FullFeaturePhase connection, in ReadyToTransferPdu r, int maxBurstLength, int maxOutstandingR2T)
    {
        lock (_gate)
        {
            var task = FindSentLocked(r.InitiatorTaskTag, connection) ?? throw Unknown("R2T", r.InitiatorTaskTag);
            if (task.Direction != ScsiDataDirection.Write)
                throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8}, a {task.CommandName} that writes nothing");
            if (r.DesiredDataTransferLength == 0 || r.DesiredDataTransferLength > (uint)maxBurstLength)
                throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8} asks for {r.DesiredDataTransferLength} bytes (MaxBurstLength {maxBurstLength})");
            if ((long)r.BufferOffset + r.DesiredDataTransferLength > task.TransferLength)
                throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8} asks for bytes {r.BufferOffset}..{r.BufferOffset + r.DesiredDataTransferLength} of a {task.TransferLength}-byte write");
            if (r.R2TSN != task.NextR2TSN)
                throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8} has R2TSN {r.R2TSN}, expected {task.NextR2TSN}");
            if (task.OutstandingR2Ts >= maxOutstandingR2T)
                throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8} exceeds MaxOutstandingR2T={maxOutstandingR2T}");
            if (r.TargetTransferTag == BasicHeaderSegment.ReservedTag)
                throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8} carries the reserved TTT 0xffffffff");
            task.NextR2TSN++;
            task.OutstandingR2Ts++;
            return task;
        }
    }

    /// <summary>
    /// The final Data-Out of an R2T's sequence is about to go out: the R2T stops counting as outstanding now, not
    /// after the send returns, since the target may answer it with the next R2T before that.
    /// </summary>
    public void R2TServed(uint itt, FullFeaturePhase connection)
    {
        lock (_gate)
        {
            var task = FindSentLocked(itt, connection);
            if (task != null && task.OutstandingR2Ts > 0) task.OutstandingR2Ts--;
        }
    }

    private static IscsiProtocolException Unknown(string what, uint itt) => new($"{what} for unknown ITT 0x{itt:x8}");

    // ---------------------------------------------------------------- timed out

    /// <summary>Sent tasks past their deadline, not yet in recovery: they enter <see cref="TaskRecovery.Aborting"/>.</summary>
    public void CollectTimedOut(long now, List<TimedOutTask> into)
    {
        lock (_gate)
        {
            if (_table.Count == 0) return;
            foreach (var t in _table.Snapshot())
            {
                if (t.State != ScsiTaskState.Sent || t.Recovery != TaskRecovery.None || now < t.Deadline) continue;
                t.Recovery = TaskRecovery.Aborting;
                t.Timeouts++;
                into.Add(new TimedOutTask(t, t.Itt, t.CmdSN, t.Lun, t.Connection!));
            }
        }
    }

    /// <summary>The tasks of <paramref name="lun"/> still on <paramref name="connection"/> enter <see cref="TaskRecovery.Resetting"/>.</summary>
    public void MarkResetting(ulong lun, FullFeaturePhase connection)
    {
        lock (_gate)
            foreach (var t in _table.Snapshot())
                if (t.State == ScsiTaskState.Sent && t.Lun == lun && t.Connection == connection) t.Recovery = TaskRecovery.Resetting;
    }

    /// <summary>
    /// The target ended the task (ABORT TASK confirmed): if it is still that instance and still unanswered, it goes
    /// back to the queue (<paramref name="reissue"/> set) or out of the session to be failed by the caller.
    /// </summary>
    public EndedTask EndAtTarget(ScsiTask task, uint itt, FullFeaturePhase connection, int maxTimeouts)
    {
        lock (_gate)
        {
            if (task.Itt != itt || task.State != ScsiTaskState.Sent || task.Connection != connection) return default;
            return EndLocked(task, maxTimeouts);
        }
    }

    /// <summary>Every task of <paramref name="lun"/> on <paramref name="connection"/> was ended by a LOGICAL UNIT RESET.</summary>
    public List<EndedTask> EndLunAtTarget(ulong lun, FullFeaturePhase connection, int maxTimeouts)
    {
        var ended = new List<EndedTask>();
        lock (_gate)
            foreach (var t in _table.Snapshot())
                if (t.State == ScsiTaskState.Sent && t.Lun == lun && t.Connection == connection) ended.Add(EndLocked(t, maxTimeouts));
        return ended;
    }

    private EndedTask EndLocked(ScsiTask task, int maxTimeouts)
    {
        var result = new EndedTask(task, task.Connection, task.TransportHoldsBuffer, task.Itt, Reissued: false);
        task.TransportHoldsBuffer = false;
        if (task.Mode != ScsiTaskMode.Result && task.Timeouts <= maxTimeouts)
        {
            LeaveSentLocked(task);
            task.State = ScsiTaskState.Queued;
            task.Recovery = TaskRecovery.None;
            task.ResetProgress();
            // The receive loop still copying the old instance's Data-In into the buffer re-queues it when done.
            if (task.ReceivingDataIn) task.DeferredRequeue = true;
            else _queue.Enqueue(task);
            return result with { Reissued = true };
        }
        return result;
    }

    // ---------------------------------------------------------------- retried, completed, failed

    /// <summary>
    /// A sent task is answered with a status worth another try: back into the queue now or after a delay (then
    /// <see cref="RequeueDelayed"/> puts it back). The ITT is kept (the target is done with it).
    /// </summary>
    public bool TryRequeue(ScsiTask task, bool delayed, out FullFeaturePhase? connection, out bool holdsBuffer)
    {
        lock (_gate)
        {
            connection = task.Connection;
            holdsBuffer = task.TransportHoldsBuffer;
            if (task.State != ScsiTaskState.Sent || task.AbortRequested) return false;
            task.Retries++;
            LeaveSentLocked(task);
            task.State = ScsiTaskState.Queued;
            task.Recovery = TaskRecovery.None;
            task.ResetProgress();
            task.Delayed = delayed;
            if (!delayed) _queue.Enqueue(task);
            return true;
        }
    }

    /// <summary>A delayed retry is due; false when the task moved on meanwhile (cancelled, re-queued by a reinstatement).</summary>
    public bool RequeueDelayed(ScsiTask task, uint itt)
    {
        lock (_gate)
        {
            if (task.Itt != itt || task.State != ScsiTaskState.Queued || !task.Delayed) return false;
            task.Delayed = false;
            _queue.Enqueue(task);
            return _connection != null;
        }
    }

    /// <summary>
    /// Takes a task out of the session (to complete it, or to fail it with <paramref name="failure"/>); false when
    /// something else already did, or when the receive loop is copying a Data-In into its buffer: then the failure is
    /// recorded, and the receive loop retires the task and fails it once the copy is over. (Only other threads meet a
    /// task in that state, and they only ever fail it: the receive loop's own completions come between its copies.)
    /// </summary>
    public bool Retire(ScsiTask task, Exception? failure, out FullFeaturePhase? connection, out bool holdsBuffer)
    {
        lock (_gate)
        {
            connection = task.Connection;
            holdsBuffer = task.TransportHoldsBuffer;
            if (task.State is not (ScsiTaskState.Queued or ScsiTaskState.Sent)) return false;
            if (task.ReceivingDataIn)
            {
                Debug.Assert(failure != null, "a task being received into is only ever failed from another thread");
                task.DeferredFailure ??= failure;
                return false;
            }
            RetireLocked(task);
            return true;
        }
    }

    private void RetireLocked(ScsiTask task)
    {
        LeaveSentLocked(task);
        task.State = ScsiTaskState.Done;
        task.TransportHoldsBuffer = false;
        _table.Remove(task);
        if (_table.Count == 0) _drained?.TrySetResult();
    }

    /// <summary>Every way out of Sent passes here, so that the connection's count of owed answers stays true.</summary>
    private static void LeaveSentLocked(ScsiTask task)
    {
        if (task.State == ScsiTaskState.Sent) task.Connection?.Owed.Left(task);
    }

    // ---------------------------------------------------------------- connection end

    /// <summary>The connection ended: its sent tasks go back to Queued for the next connection. Caller holds the gate.</summary>
    public int RetainLocked()
    {
        _connection = null;
        var retained = 0;
        foreach (var t in _table.Snapshot())
        {
            if (t.State == ScsiTaskState.Sent)
            {
                LeaveSentLocked(t);
                t.State = ScsiTaskState.Queued;
                t.ResetProgress();
            }
            t.Recovery = TaskRecovery.None;
            retained++;
        }
        return retained;
    }

    /// <summary>Everything outstanding, for failing it; nothing is queued afterwards. Caller holds the gate.</summary>
    public List<ScsiTask> TakeAllLocked(bool detach)
    {
        if (detach) _connection = null;
        _queue.Clear();
        return _table.Snapshot();
    }

    /// <summary>Commands on <paramref name="connection"/> not answered yet.</summary>
    public int SentCount(FullFeaturePhase connection)
    {
        lock (_gate)
        {
            var count = 0;
            foreach (var t in _table.Snapshot()) if (t.State == ScsiTaskState.Sent && t.Connection == connection) count++;
            return count;
        }
    }

    /// <summary>Completes when no task is left. Caller holds the gate.</summary>
    public Task DrainedLocked()
    {
        _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (_table.Count == 0) _drained.TrySetResult();
        return _drained.Task;
    }
}

/// <summary>A task that passed its deadline, as it was then (the pooled object may move on).</summary>
internal readonly record struct TimedOutTask(ScsiTask Task, uint Itt, uint CmdSN, ulong Lun, FullFeaturePhase Connection);

/// <summary>What <see cref="TaskLifecycle.EndDataIn"/> did: bytes received so far, whether the writer has commands to
/// send now (the window grew with commands waiting, or this task went back to the queue), and whether the task was retired (then with its connection and whether the transport held its buffer).
/// <paramref name="EndedMeanwhile"/>: the task was ended while the data was being copied, and nothing more is to be
/// done with the PDU than failing the task with <paramref name="Failure"/> when that is set.</summary>
internal readonly record struct DataInEnd(int Received, bool WakeWriter, bool Retired, FullFeaturePhase? Connection, bool HoldsBuffer,
    bool EndedMeanwhile = false, Exception? Failure = null);

/// <summary>A task the target ended: re-issued, or to be failed by the caller (and its buffer released).</summary>
internal readonly record struct EndedTask(ScsiTask? Task, FullFeaturePhase? Connection, bool HoldsBuffer, uint Itt, bool Reissued);
