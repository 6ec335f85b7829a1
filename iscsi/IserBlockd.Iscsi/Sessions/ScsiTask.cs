using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Primitives.Async;

namespace IserBlockd.Iscsi.Sessions;

internal enum ScsiTaskState : byte
{
    Free,
    /// <summary>Waiting for the command window or for a connection.</summary>
    Queued,
    /// <summary>Sent on a connection; owned by that connection's receive loop until it completes.</summary>
    Sent,
    Done,
}

/// <summary>Where a sent task stands in the escalation after its deadline passed.</summary>
internal enum TaskRecovery : byte
{
    None,
    /// <summary>Timed out; ABORT TASK sent.</summary>
    Aborting,
    /// <summary>The abort was not confirmed; LOGICAL UNIT RESET sent for its LU.</summary>
    Resetting,
}

/// <summary>How a task reports its end.</summary>
internal enum ScsiTaskMode : byte
{
    /// <summary>The caller gets the <see cref="ScsiCommandResult"/>, whatever the status.</summary>
    Result,
    /// <summary>
    /// Retried inside the session like block I/O; the caller gets the result of a GOOD completion, anything else ends
    /// in a <see cref="Scsi.ScsiCommandException"/>.
    /// </summary>
    Retried,
    /// <summary>
    /// Block I/O: UNIT ATTENTION and transient statuses are retried inside the session, anything else but GOOD ends
    /// in a <see cref="Scsi.ScsiCommandException"/>; the caller awaits a plain ValueTask (no state machine per I/O).
    /// </summary>
    BlockIo,
}

/// <summary>
/// One SCSI command in flight. Pooled: the awaiting caller taking the result returns it to the pool, so steady-state
/// I/O allocates nothing. The fields belong to the session lock except where the receive loop owns a Sent task.
/// </summary>
internal sealed class ScsiTask : IThreadPoolWorkItem
{
    // Block I/O results continue inline on the receive loop (see SetResult); everything else goes to the thread pool
    // through this object as the work item (RunContinuationsAsynchronously would allocate one per completion).
    private readonly Completion _completion;
    private ScsiCommandResult _result;
    private Exception? _error;
    private readonly ScsiTaskPool _pool;

    public ScsiTask(ScsiTaskPool pool)
    {
        _pool = pool;
        _completion = new Completion(this);
    }

    public IscsiSession? Session;

    // The request.
    public ulong Lun;
    public byte[] Cdb = new byte[16];
    public int CdbLength;
    public ScsiDataDirection Direction;
    public Memory<byte> Buffer;
    public TaskAttribute Attribute;

    // Session bookkeeping.
    public uint Itt;
    public long Sequence;
    public ScsiTaskState State;
    public uint CmdSN;
    public FullFeaturePhase? Connection;
    public bool AbortRequested;
    public CancellationTokenRegistration Cancellation;
    public ScsiTaskMode Mode;
    public int Retries;
    /// <summary>Waiting out a BUSY before going back into the command queue.</summary>
    public bool Delayed;
    /// <summary>Stopwatch timestamp past which the sent command is timed out.</summary>
    public long Deadline;
    /// <summary>Stopwatch timestamp until which BUSY and the like are retried (submission + command timeout).</summary>
    public long RetryUntil;
    public TaskRecovery Recovery;
    /// <summary>Times this command passed its deadline.</summary>
    public int Timeouts;

    // Progress on the current connection.
    public int DataInBytes;
    public uint NextDataSN;
    public uint NextR2TSN;
    public int OutstandingR2Ts;
    public bool TransportHoldsBuffer;
    /// <summary>A write sent with less than all its data: counted by its connection's <see cref="AnswersOwed"/>.</summary>
    public bool AwaitsR2T;

    // Set by BeginDataIn and cleared by EndDataIn, under the session lock: the receive loop is copying a Data-In segment
    // into Buffer outside the lock. An end that comes meanwhile from another thread (a TMF's answer is acted on from the
    // thread pool) is only recorded in DeferredFailure / DeferredRequeue, and the receive loop carries it out once the
    // copy is over: the caller never gets its buffer back, nor does the command go out again, while bytes may still land.
    public bool ReceivingDataIn;
    public Exception? DeferredFailure;
    public bool DeferredRequeue;

    public int TransferLength => Buffer.Length;

    public string CommandName => ScsiOpcode.Name(Cdb.AsSpan(0, CdbLength));

    public void SetCdb(ReadOnlySpan<byte> cdb)
    {
        if (cdb.Length > Cdb.Length) Cdb = new byte[Math.Max(cdb.Length, 32)];
        cdb.CopyTo(Cdb);
        CdbLength = cdb.Length;
    }

    public void ResetProgress()
    {
        DataInBytes = 0;
        NextDataSN = 0;
        NextR2TSN = 0;
        OutstandingR2Ts = 0;
        Connection = null;
        TransportHoldsBuffer = false;
    }

    public ValueTask<ScsiCommandResult> AsValueTask() => _completion.WaitAsync();

    public ValueTask AsBlockIoValueTask() => _completion.WaitCompletionAsync();

    /// <summary>The LBA of a READ/WRITE CDB, for log lines; null for other commands.</summary>
    public ulong? Lba => Scsi.CdbBuilder.TryGetLba(Cdb.AsSpan(0, CdbLength));

    /// <summary>
    /// Publishes the result. A block I/O task (<see cref="ScsiTaskMode.BlockIo"/>) continues right here, on the
    /// receive loop: its awaiter is the LUN's block I/O path, which counts, queues the NBD reply and may issue the next
    /// command, none of which blocks (<see cref="Scsi.ScsiLun"/> documents that contract for its callers). Saving the
    /// hop to another thread is most of the cost of a small I/O. Results of <see cref="IscsiSession.ExecuteAsync"/>
    /// and every failure continue on the thread pool: their awaiters are arbitrary code.
    /// </summary>
    /// <returns>false when the continuation ran inline and threw (it escaped its own handlers; the caller logs it).</returns>
    public bool SetResult(in ScsiCommandResult result, out Exception? continuationError)
    {
        continuationError = null;
        _error = null;
        if (Mode != ScsiTaskMode.BlockIo)
        {
            _result = result;
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            return true;
        }
        try
        {
            // The awaiter taking the result returns this object to the pool before SetResult returns: touch nothing after.
            _completion.SetResult(result);
            return true;
        }
        catch (Exception e)
        {
            continuationError = e;
            return false;
        }
    }

    public void SetException(Exception error)
    {
        _error = error;
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    void IThreadPoolWorkItem.Execute()
    {
        if (_error is { } error)
        {
            _error = null;
            _completion.SetException(error);
        }
        else _completion.SetResult(_result);
    }

    /// <summary>Forgets this use (buffer, connection, retries) and gives the object back to the pool.</summary>
    public void ReturnToPool()
    {
        Buffer = default;
        Connection = null;
        State = ScsiTaskState.Free;
        Mode = ScsiTaskMode.Result;
        Retries = 0;
        Timeouts = 0;
        Delayed = false;
        Recovery = TaskRecovery.None;
        ReceivingDataIn = false;
        DeferredFailure = null;
        DeferredRequeue = false;
        _pool.Return(this);
    }

    /// <summary>The task's awaitable: reset as the awaiter takes the result, after which the task goes back to the pool.</summary>
    private sealed class Completion(ScsiTask task)
        : ResettableCompletionSource<ScsiCommandResult>(runContinuationsAsynchronously: false, resetWhenConsumed: true)
    {
        protected override void OnConsumed() => task.ReturnToPool();
    }
}

/// <summary>A bounded stack of idle <see cref="ScsiTask"/> objects.</summary>
internal sealed class ScsiTaskPool
{
    private readonly ScsiTask[] _items;
    private int _count;

    public ScsiTaskPool(int capacity) => _items = new ScsiTask[capacity];

    public ScsiTask Rent()
    {
        lock (_items)
        {
            if (_count > 0)
            {
                var task = _items[--_count];
                _items[_count] = null!;
                return task;
            }
        }
        return new ScsiTask(this);
    }

    public void Return(ScsiTask task)
    {
        lock (_items)
        {
            if (_count < _items.Length) _items[_count++] = task;
        }
    }
}
