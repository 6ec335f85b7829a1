using System.Runtime.ExceptionServices;
using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Benchmarks.Iscsi;

/// <summary>
/// Keeps a number of equal-sized block I/Os in flight on a <see cref="ScsiLun"/> without allocating anything itself,
/// so that what the memory diagnoser counts is the initiator's. Each slot is a long-lived async loop (its state machine
/// is allocated once, at construction) that awaits its I/Os one after the other, as an NBD connection loop feeds the
/// LUN; <see cref="Run"/> releases the loops and waits for them. Block I/O completes on the session's receive loop,
/// so in steady state each next command is issued, and written, from there.
/// </summary>
/// <remarks>
/// The loops await with the compiler's async machinery on purpose: when a completion races with the registration of
/// the continuation, the runtime queues the state machine itself to the thread pool, whereas an <see cref="Action"/>
/// continuation registered by hand would need a work item object allocated.
/// </remarks>
internal sealed class BlockIoDriver
{
    private readonly ScsiLun _lun;
    private readonly StartSignal[] _starts;
    private readonly Task[] _loops;
    private readonly ManualResetEventSlim _done = new();
    private readonly ulong _blocksPerIo;
    private readonly ulong _slots;
    private bool _write;
    private int _claimed;
    private int _count;
    private int _active;
    private Exception? _failure;

    public BlockIoDriver(ScsiLun lun, int maxQueueDepth, int ioSize)
    {
        if (ioSize % lun.BlockSize != 0) throw new ArgumentException($"{ioSize} bytes is not a whole number of {lun.BlockSize}-byte blocks", nameof(ioSize));
        _lun = lun;
        _blocksPerIo = (ulong)ioSize / lun.BlockSize;
        _slots = lun.BlockCount / _blocksPerIo;
        _starts = new StartSignal[maxQueueDepth];
        _loops = new Task[maxQueueDepth];
        for (var i = 0; i < maxQueueDepth; i++)
        {
            var buffer = new byte[ioSize];
            buffer.AsSpan().Fill((byte)(i + 1));
            _starts[i] = new StartSignal();
            _loops[i] = IssueLoopAsync(_starts[i], buffer);
        }
    }

    /// <summary>
    /// Runs <paramref name="count"/> I/Os (READ, or WRITE of each slot's pattern) at consecutive I/O-sized offsets,
    /// <paramref name="queueDepth"/> at a time; returns when all have completed, throws the first failure.
    /// Must not be called on the session's receive loop (it waits for I/O that only that loop completes).
    /// </summary>
    public void Run(bool write, int queueDepth, int count)
    {
        if (queueDepth < 1 || queueDepth > _starts.Length) throw new ArgumentOutOfRangeException(nameof(queueDepth));
        _write = write;
        _claimed = 0;
        _count = count;
        _failure = null;
        _active = queueDepth;
        _done.Reset();
        for (var i = 0; i < queueDepth; i++) _starts[i].Set(run: true);
        _done.Wait();
        if (_failure is { } failure) ExceptionDispatchInfo.Throw(failure);
    }

    /// <summary>Ends the loops (between runs).</summary>
    public void Stop()
    {
        foreach (var start in _starts) start.Set(run: false);
        Task.WaitAll(_loops);
    }

    private async Task IssueLoopAsync(StartSignal start, byte[] buffer)
    {
        while (await start.WaitAsync())
        {
            while (TryClaim(out var index))
            {
                try
                {
                    var lba = (ulong)index % _slots * _blocksPerIo;
                    // Issued as the NBD server issues a burst: under a send hold, released before the wait.
                    _lun.Session.HoldSends();
                    var io = _write ? _lun.WriteAsync(lba, buffer) : _lun.ReadAsync(lba, buffer);
                    _lun.Session.ReleaseSends();
                    await io.ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref _failure, e, null);
                    break;
                }
            }
            if (Interlocked.Decrement(ref _active) == 0) _done.Set();
        }
    }

    private bool TryClaim(out int index)
    {
        index = Interlocked.Increment(ref _claimed) - 1;
        return index < _count && Volatile.Read(ref _failure) == null;
    }
}
