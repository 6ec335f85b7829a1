using System.Runtime.InteropServices;
using IserBlockd.BlockDev.Kernel.IoUring;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel.Ublk;

/// <summary>
/// One ublk hardware queue: a thread of its own with an io_uring of its own, which fetches every tag
/// (FETCH_REQ), and for each request the kernel hands over starts its handling and, once answered, commits
/// the result and fetches the tag again in one command (COMMIT_AND_FETCH_REQ). The kernel requires all of a
/// queue's commands to come from the one thread that fetched them; requests are answered on any thread, so
/// answers are queued here and an eventfd read, kept pending on the ring, wakes the thread.
/// </summary>
internal sealed unsafe class UblkQueue : IDisposable
{
    private const ulong WakeUserData = ulong.MaxValue;

    private readonly KernelUblkDevice _device;
    private readonly IoUringRing _ring;
    private readonly MappedRegion _descriptors;
    private readonly FileDescriptorHandle _wake;
    private readonly UblkRequest[] _requests;
    private readonly Lock _answersLock = new();
    private (ushort Tag, int Result)[] _answers;
    private (ushort Tag, int Result)[] _draining;
    private int _answerCount;
    private int _wakePending;
    private readonly ulong* _wakeBuffer = (ulong*)NativeMemory.AllocZeroed(8);   // the kernel writes it: not movable
    private readonly Thread _thread;
    private readonly TaskCompletionSource _fetched = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _releasing;
    private int _inFlight;

    public UblkQueue(KernelUblkDevice device, int queueId, int depth)
    {
        _device = device;
        QueueId = queueId;
        Depth = depth;
        var (offset, length) = UblkCommands.DescriptorArea(queueId, depth, Environment.SystemPageSize);
        _descriptors = MappedRegion.Map(device.CharFd, (nuint)length, offset, writable: false, $"ublk queue {queueId}'s descriptors");
        try
        {
            // the CQ holds every tag's completion plus the wake-up read
            _ring = IoUringRing.Create((uint)depth + 1, IoUringSetupFlags.CoopTaskRun);
            var fd = LibC.eventfd(0, LibC.EFD_CLOEXEC);
            if (fd < 0) throw new IoUringException("eventfd", Errno.Last);
            _wake = new FileDescriptorHandle(fd);
        }
        catch
        {
            _ring?.Dispose();
            _descriptors.Dispose();
            throw;
        }
        _answers = new (ushort, int)[depth];
        _draining = new (ushort, int)[depth];
        _requests = new UblkRequest[depth];
        for (var tag = 0; tag < depth; tag++) _requests[tag] = new UblkRequest(this, (ushort)tag);
        _thread = new Thread(Run) { IsBackground = true, Name = $"ublk{device.Id}q{queueId}" };
    }

    public int QueueId { get; }

    public int Depth { get; }

    public KernelUblkDevice Device => _device;

    /// <summary>Completes once every tag's FETCH_REQ has been submitted (START_DEV / END_USER_RECOVERY may follow).</summary>
    public Task Fetched => _fetched.Task;

    /// <summary>Completes when the thread has ended: every tag aborted by the kernel (STOP_DEV), or released.</summary>
    public Task Ended => _ended.Task;

    public void Start() => _thread.Start();

    /// <summary>Stops the thread without stopping the device (it is left to a later server): requests being
    /// handled are answered, new ones are left alone, then the thread ends; closing the ring makes the kernel
    /// quiesce the device and (with REISSUE) requeue what it had handed us.</summary>
    public void Release()
    {
        _releasing = true;
        Wake();
    }

    /// <summary>The descriptor of request <paramref name="tag"/>, as the kernel wrote it before completing its fetch.</summary>
    public UblkIoDescriptor Descriptor(ushort tag) => ((UblkIoDescriptor*)_descriptors.Address)[tag];

    /// <summary>Called (on any thread) when request <paramref name="tag"/> has its answer.</summary>
    public void Answer(ushort tag, int result)
    {
        lock (_answersLock) _answers[_answerCount++] = (tag, result);
        if (Thread.CurrentThread != _thread) Wake();
    }

    private void Wake()
    {
        if (Interlocked.Exchange(ref _wakePending, 1) != 0) return;
        ulong one = 1;
        LibC.write(_wake.Fd, &one, 8);
    }

    private void Run()
    {
        var aborted = 0;
        try
        {
            for (var tag = 0; tag < Depth; tag++) QueueIoCommand(UblkCommands.FetchRequest, (ushort)tag, 0);
            QueueWakeRead();
            _ring.Submit();
            _fetched.TrySetResult();
            while (aborted < Depth)
            {
                if (_releasing && Volatile.Read(ref _inFlight) == 0)
                {
                    _ring.Submit();   // the last answers
                    break;
                }
                _ring.Submit(waitFor: 1);
                while (_ring.TryTakeCompletion(out var cqe))
                {
                    if (cqe.UserData == WakeUserData)
                    {
                        Volatile.Write(ref _wakePending, 0);
                        QueueWakeRead();
                        continue;
                    }
                    var tag = (ushort)cqe.UserData;
                    if (cqe.Res == 0)
                    {
                        if (_releasing) continue;   // not ours to answer any more: requeued for the next server
                        Interlocked.Increment(ref _inFlight);
                        _requests[tag].Start(Descriptor(tag));
                    }
                    else
                    {
                        // UBLK_IO_RES_ABORT after STOP_DEV, or a refused command: this tag is done
                        if (cqe.Res != UblkCommands.IoResultAbort) _device.ReportQueueError(QueueId, tag, -cqe.Res);
                        aborted++;
                    }
                }
                CommitAnswers();
            }
        }
        catch (Exception e)
        {
            _fetched.TrySetException(e);
            _device.ReportQueueFailure(QueueId, e);
        }
        finally
        {
            _ended.TrySetResult();
        }
    }

    /// <summary>Turns the answers collected since the last round into COMMIT_AND_FETCH_REQs.</summary>
    private void CommitAnswers()
    {
        int count;
        lock (_answersLock)
        {
            (_answers, _draining) = (_draining, _answers);
            count = _answerCount;
            _answerCount = 0;
        }
        for (var i = 0; i < count; i++)
        {
            var (tag, result) = _draining[i];
            Interlocked.Decrement(ref _inFlight);
            QueueIoCommand(UblkCommands.CommitAndFetchRequest, tag, result);
        }
    }

    private void QueueIoCommand(uint command, ushort tag, int result)
    {
        var sqe = NextSqe();
        sqe->Opcode = IoUringOpcode.UringCmd;
        sqe->Fd = _device.CharFd;
        sqe->CommandOp = UblkCommands.IoOp(command);
        sqe->UserData = tag;
        var io = new UblkIoCommand { QueueId = (ushort)QueueId, Tag = tag, Result = result };
        MemoryMarshal.Write(_ring.CommandArea(sqe), in io);
    }

    private void QueueWakeRead()
    {
        var sqe = NextSqe();
        sqe->Opcode = IoUringOpcode.Read;
        sqe->Fd = _wake.Fd;
        sqe->Address = (ulong)_wakeBuffer;
        sqe->Length = 8;
        sqe->UserData = WakeUserData;
    }

    private IoUringSqe* NextSqe()
    {
        var sqe = _ring.TryGetSqe();
        if (sqe != null) return sqe;
        _ring.Submit();
        sqe = _ring.TryGetSqe();
        return sqe != null ? sqe : throw new IoUringException("ublk queue ring full", Errno.EBUSY);
    }

    public void Dispose()
    {
        _ring.Dispose();
        _descriptors.Dispose();
        _wake.Dispose();
        NativeMemory.Free(_wakeBuffer);
    }
}
