using System.Runtime.InteropServices;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel.IoUring;

/// <summary>
/// One io_uring instance: the submission and completion rings and the SQE array mapped into this process.
/// Not thread-safe: one thread gets SQEs, submits and reaps (ublk also requires that its queue's commands
/// come from one task). Entries are handed out zeroed; <see cref="Submit"/> publishes them to the kernel.
/// </summary>
public sealed unsafe class IoUringRing : IDisposable
{
    private readonly FileDescriptorHandle _fd;
    private readonly MappedRegion _rings;
    private readonly MappedRegion _sqes;
    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint _sqMask;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly IoUringCqe* _cqes;
    private readonly byte* _sqeBase;
    private uint _sqeTail;      // entries handed out
    private uint _published;    // entries the kernel has been told about (sq tail)

    private IoUringRing(FileDescriptorHandle fd, in IoUringParams p, IoUringSetupFlags flags)
    {
        _fd = fd;
        SqEntries = p.SqEntries;
        CqEntries = p.CqEntries;
        Features = p.Features;
        SqeSize = (flags & IoUringSetupFlags.Sqe128) != 0 ? 128 : 64;
        if ((p.Features & IoUringNative.FeatureSingleMmap) == 0)
            throw new IoUringException("io_uring without IORING_FEAT_SINGLE_MMAP (Linux < 5.4) is not supported", 95);

        var sqSize = p.SqOff.Array + p.SqEntries * sizeof(uint);
        var cqSize = p.CqOff.Cqes + p.CqEntries * (uint)sizeof(IoUringCqe);
        try
        {
            _rings = MappedRegion.Map(fd.Fd, Math.Max(sqSize, cqSize), IoUringNative.OffSqRing, writable: true, "the io_uring rings");
            _sqes = MappedRegion.Map(fd.Fd, (nuint)(p.SqEntries * SqeSize), IoUringNative.OffSqes, writable: true, "the io_uring SQEs");
        }
        catch
        {
            _rings?.Dispose();
            throw;
        }
        var ring = (byte*)_rings.Address;
        _sqHead = (uint*)(ring + p.SqOff.Head);
        _sqTail = (uint*)(ring + p.SqOff.Tail);
        _sqMask = *(uint*)(ring + p.SqOff.RingMask);
        _cqHead = (uint*)(ring + p.CqOff.Head);
        _cqTail = (uint*)(ring + p.CqOff.Tail);
        _cqMask = *(uint*)(ring + p.CqOff.RingMask);
        _cqes = (IoUringCqe*)(ring + p.CqOff.Cqes);
        _sqeBase = (byte*)_sqes.Address;
        // the SQ index array maps ring slot i to SQE i, once and for all
        var array = (uint*)(ring + p.SqOff.Array);
        for (uint i = 0; i < p.SqEntries; i++) array[i] = i;
        _sqeTail = _published = Volatile.Read(ref *_sqTail);
    }

    /// <summary>io_uring_setup with <paramref name="entries"/> submission entries (the kernel rounds up to a power of two).</summary>
    public static IoUringRing Create(uint entries, IoUringSetupFlags flags = IoUringSetupFlags.None)
    {
        IoUringParams p = default;
        p.Flags = (uint)flags;
        var fd = IoUringNative.Setup(entries, &p);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IoUringException($"io_uring_setup({entries}, flags 0x{(uint)flags:x})" +
                (errno == 1 ? " (io_uring is disabled: /proc/sys/kernel/io_uring_disabled, or a seccomp filter)" : ""), errno);
        }
        var handle = new FileDescriptorHandle(fd);
        try { return new IoUringRing(handle, p, flags); }
        catch { handle.Dispose(); throw; }
    }

    public uint SqEntries { get; }
    public uint CqEntries { get; }
    public uint Features { get; }

    /// <summary>64, or 128 with <see cref="IoUringSetupFlags.Sqe128"/>.</summary>
    public int SqeSize { get; }

    /// <summary>Entries handed out by <see cref="GetSqe"/> and not yet submitted.</summary>
    public uint Pending => _sqeTail - _published;

    /// <summary>A zeroed submission entry (<see cref="SqeSize"/> bytes), or null when the ring is full.</summary>
    public IoUringSqe* TryGetSqe()
    {
        var head = Volatile.Read(ref *_sqHead);
        if (_sqeTail - head >= SqEntries) return null;
        var sqe = (IoUringSqe*)(_sqeBase + (_sqeTail & _sqMask) * (uint)SqeSize);
        new Span<byte>(sqe, SqeSize).Clear();
        _sqeTail++;
        return sqe;
    }

    /// <summary>The command area of an URING_CMD entry (16 bytes, or 80 with 128-byte entries).</summary>
    public Span<byte> CommandArea(IoUringSqe* sqe) => new((byte*)sqe + IoUringSqe.CommandOffset, SqeSize - IoUringSqe.CommandOffset);

    /// <summary>Publishes the pending entries and enters the kernel to submit them, waiting for
    /// <paramref name="waitFor"/> completions. Returns the number of entries the kernel consumed.</summary>
    public int Submit(uint waitFor = 0)
    {
        Volatile.Write(ref *_sqTail, _sqeTail);
        var toSubmit = _sqeTail - _published;
        _published = _sqeTail;
        while (true)
        {
            var flags = waitFor > 0 ? IoUringNative.EnterGetEvents : 0;
            var n = IoUringNative.Enter(_fd.Fd, toSubmit, waitFor, flags, null, 0);
            if (n >= 0) return n;
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.EINTR) { toSubmit = 0; continue; }
            throw new IoUringException("io_uring_enter", errno);
        }
    }

    /// <summary>Submits what is pending and waits up to <paramref name="timeout"/> for at least one completion.
    /// False when the time passed with none.</summary>
    public bool SubmitAndWait(TimeSpan timeout)
    {
        Volatile.Write(ref *_sqTail, _sqeTail);
        var toSubmit = _sqeTail - _published;
        _published = _sqeTail;
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            if (CompletionsReady > 0 && toSubmit == 0) return true;
            var left = Math.Max(0, deadline - Environment.TickCount64);
            var ts = new KernelTimespec { Seconds = left / 1000, Nanoseconds = left % 1000 * 1_000_000 };
            var arg = new IoUringGetEventsArg { Timespec = (ulong)&ts };
            var n = IoUringNative.Enter(_fd.Fd, toSubmit, 1, IoUringNative.EnterGetEvents | IoUringNative.EnterExtArg,
                &arg, (nuint)sizeof(IoUringGetEventsArg));
            if (n >= 0) toSubmit -= Math.Min(toSubmit, (uint)n);
            else
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.ETIME) return CompletionsReady > 0;
                if (errno != Errno.EINTR) throw new IoUringException("io_uring_enter (wait)", errno);
            }
            if (CompletionsReady > 0) return true;
            if (Environment.TickCount64 >= deadline) return false;
        }
    }

    /// <summary>Completions posted and not yet consumed.</summary>
    public uint CompletionsReady => Volatile.Read(ref *_cqTail) - *_cqHead;

    /// <summary>Takes the oldest completion, if any.</summary>
    public bool TryTakeCompletion(out IoUringCqe cqe)
    {
        var head = *_cqHead;
        if (head == Volatile.Read(ref *_cqTail))
        {
            cqe = default;
            return false;
        }
        cqe = _cqes[head & _cqMask];
        Volatile.Write(ref *_cqHead, head + 1);
        return true;
    }

    public void Dispose()
    {
        _sqes.Dispose();
        _rings.Dispose();
        _fd.Dispose();
    }
}
