using System.Buffers;
using System.Runtime.InteropServices;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Primitives.Splicing;

/// <summary>
/// Bytes of a payload buffer that sit in a pipe rather than in the buffer: a receive splices them out of a socket
/// into the pipe (the kernel moves references to the socket's pages; nothing is copied in this process) and a send
/// splices them on into another socket. The pipe stands for the buffer's bytes [<see cref="Start"/>,
/// <see cref="End"/>); every other byte is in the buffer. Whoever needs those bytes in the buffer after all calls
/// <see cref="MoveIntoBuffer"/> (one copy, which a plain receive would have made anyway).
/// </summary>
/// <remarks>One user at a time: the receive that fills it, then the send that empties it; the buffer's owner orders
/// them. The descriptors are non-blocking: nothing here waits.</remarks>
public sealed unsafe class PayloadPipe : IDisposable
{
    /// <summary>Pipes alive in the process at most (two descriptors each); beyond that buffers go without.</summary>
    public const int MaxOpen = 1024;

    private static int s_open;
    private static FileDescriptorHandle? s_null;

    private readonly FileDescriptorHandle _read;
    private readonly FileDescriptorHandle _write;
    private int _disposed;

    private PayloadPipe(FileDescriptorHandle read, FileDescriptorHandle write, int capacity)
    {
        _read = read;
        _write = write;
        Capacity = capacity;
    }

    /// <summary>A pipe of <paramref name="wanted"/> bytes where the system gives one that large, else of at least
    /// <paramref name="capacity"/>; null when it gives neither (fs.pipe-max-size, an unprivileged user's pipe pages) or
    /// <see cref="MaxOpen"/> are open.</summary>
    public static PayloadPipe? TryCreate(int capacity, int wanted = 0) =>
        (wanted > capacity ? TryCreateOf(wanted) : null) ?? TryCreateOf(capacity);

    private static PayloadPipe? TryCreateOf(int capacity)
    {
        if (Interlocked.Increment(ref s_open) > MaxOpen)
        {
            Interlocked.Decrement(ref s_open);
            return null;
        }
        var fds = stackalloc int[2];
        if (LibC.pipe2(fds, LibC.O_NONBLOCK | LibC.O_CLOEXEC) != 0)
        {
            Interlocked.Decrement(ref s_open);
            return null;
        }
        var read = new FileDescriptorHandle(fds[0]);
        var write = new FileDescriptorHandle(fds[1]);
        var size = LibC.fcntl(fds[1], LibC.F_SETPIPE_SZ, capacity);
        if (size < capacity)
        {
            read.Dispose();
            write.Dispose();
            Interlocked.Decrement(ref s_open);
            return null;
        }
        return new PayloadPipe(read, write, size);
    }

    /// <summary>The pipe (and its owner) behind <paramref name="memory"/>, a slice of a carrier's buffer, with the
    /// slice's offset in that buffer; null when the memory has none.</summary>
    public static PayloadPipe? Behind(Memory<byte> memory, out MemoryManager<byte>? owner, out int offset)
    {
        if (MemoryMarshal.TryGetMemoryManager<byte, MemoryManager<byte>>(memory, out owner, out offset, out _) && owner is IPayloadPipeCarrier { PayloadPipe: { } pipe })
            return pipe;
        owner = null;
        offset = 0;
        return null;
    }

    /// <summary>Makes the buffer behind <paramref name="memory"/> take all its bytes itself (see
    /// <see cref="IPayloadPipeCarrier.DetachPipe"/>): for a read that several receive loops may fill at once (one
    /// request split into several commands), since a pipe has one user at a time.</summary>
    public static void Detach(Memory<byte> memory)
    {
        if (MemoryMarshal.TryGetMemoryManager<byte, MemoryManager<byte>>(memory, out var owner) && owner is IPayloadPipeCarrier carrier)
            carrier.DetachPipe();
    }

    public int Capacity { get; }

    /// <summary>The buffer offset of the first byte in the pipe.</summary>
    public int Start { get; private set; }

    /// <summary>The buffer offset just past the last byte in the pipe: where an append goes.</summary>
    public int End { get; private set; }

    public int Length => End - Start;

    /// <summary>Appends a copy of <paramref name="data"/> (bytes a receive had already read into its own buffer);
    /// returns how many the pipe took.</summary>
    public int Append(ReadOnlySpan<byte> data)
    {
        var written = 0;
        fixed (byte* p = data)
        {
            while (written < data.Length)
            {
                var n = LibC.write(_write.Fd, p + written, (nuint)(data.Length - written));
                if (n > 0)
                {
                    written += (int)n;
                    continue;
                }
                if (n < 0 && Errno.Last == Errno.EINTR) continue;
                break;
            }
        }
        End += written;
        return written;
    }

    /// <summary>Appends references to the pages of <paramref name="length"/> bytes at <paramref name="data"/>
    /// (<c>vmsplice</c>; the memory must not change until whoever reads them is done); returns how many bytes the pipe
    /// took (0: none now). Failures throw <see cref="IOException"/>.</summary>
    public int AppendPages(byte* data, int length)
    {
        while (true)
        {
            var vector = new LibC.IoVector { Base = data, Length = (nuint)length };
            var n = LibC.vmsplice(_write.Fd, &vector, 1, LibC.SPLICE_F_NONBLOCK);
            if (n >= 0)
            {
                End += (int)n;
                return (int)n;
            }
            var errno = Errno.Last;
            if (errno == Errno.EINTR) continue;
            if (errno == Errno.EAGAIN) return 0;
            throw new IOException($"vmsplice: {Errno.Describe(errno)}");
        }
    }

    /// <summary>Moves up to <paramref name="length"/> bytes from the non-blocking socket <paramref name="socketFd"/>
    /// into the pipe. Returns the bytes moved, 0 at the end of the stream, or -1 when none moved now (the socket has
    /// nothing, or the pipe is full). Failures of the socket throw <see cref="IOException"/>.</summary>
    public int SpliceFrom(int socketFd, int length)
    {
        while (true)
        {
            var n = LibC.splice(socketFd, null, _write.Fd, null, (nuint)length, LibC.SPLICE_F_MOVE | LibC.SPLICE_F_NONBLOCK);
            if (n >= 0)
            {
                End += (int)n;
                return (int)n;
            }
            var errno = Errno.Last;
            if (errno == Errno.EINTR) continue;
            if (errno == Errno.EAGAIN) return -1;
            throw new IOException($"splice: {Errno.Describe(errno)}");
        }
    }

    /// <summary>Moves from the head of the pipe into the non-blocking socket <paramref name="socketFd"/> as much as it
    /// takes now; returns how many bytes (0: none now). Failures of the socket throw <see cref="IOException"/>.</summary>
    public int SpliceTo(int socketFd)
    {
        var before = Length;
        var errno = SpliceOut(socketFd, LibC.SPLICE_F_MOVE | LibC.SPLICE_F_NONBLOCK);
        if (errno != 0 && errno != Errno.EAGAIN) throw new IOException($"splice: {Errno.Describe(errno)}");
        var moved = before - Length;
        if (Length == 0) Start = End = 0;
        return moved;
    }

    /// <summary>Splices from the head of the pipe into <paramref name="fd"/> until the pipe is empty or a call moves
    /// nothing; returns that call's errno (0: the pipe is empty or the call returned 0).</summary>
    private int SpliceOut(int fd, uint flags)
    {
        while (Length > 0)
        {
            var n = LibC.splice(_read.Fd, null, fd, null, (nuint)Length, flags);
            if (n > 0)
            {
                Start += (int)n;
                continue;
            }
            if (n == 0) return 0;
            var errno = Errno.Last;
            if (errno != Errno.EINTR) return errno;
        }
        return 0;
    }

    /// <summary>Reads what the pipe holds into its place in <paramref name="buffer"/> (the whole buffer the pipe stands
    /// for); the pipe is then empty.</summary>
    public void MoveIntoBuffer(Span<byte> buffer)
    {
        var target = buffer[Start..End];
        var done = 0;
        fixed (byte* p = target)
        {
            while (done < target.Length)
            {
                var n = LibC.read(_read.Fd, p + done, (nuint)(target.Length - done));
                if (n > 0)
                {
                    done += (int)n;
                    continue;
                }
                if (n < 0 && Errno.Last == Errno.EINTR) continue;
                Start = End = 0;
                Break();
                throw new IOException($"the payload pipe gave {done} of its {target.Length} bytes: {(n < 0 ? Errno.Describe(Errno.Last) : "end of file")}");
            }
        }
        Start = End = 0;
    }

    /// <summary>Drops what the pipe holds (a payload nobody will send); the pipe is then empty. One that cannot be
    /// emptied is broken (<see cref="IsBroken"/>) and this throws.</summary>
    public void Clear()
    {
        var devNull = LazyInitializer.EnsureInitialized(ref s_null, OpenNull);
        var errno = SpliceOut(devNull.Fd, LibC.SPLICE_F_NONBLOCK);
        if (Length > 0)
        {
            Start = End = 0;
            Break();
            throw new IOException($"could not empty a payload pipe: {(errno != 0 ? Errno.Describe(errno) : "no progress")}");
        }
        Start = End = 0;
    }

    /// <summary>True once the pipe could not be emptied: stale bytes would lead the next payload, so it is not used again.</summary>
    public bool IsBroken { get; private set; }

    private void Break() => IsBroken = true;

    private static FileDescriptorHandle OpenNull()
    {
        var fd = LibC.open("/dev/null", LibC.O_WRONLY | LibC.O_CLOEXEC);
        if (fd < 0) throw new IOException($"open /dev/null: {Errno.Describe(Errno.Last)}");
        return new FileDescriptorHandle(fd);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _read.Dispose();
        _write.Dispose();
        Interlocked.Decrement(ref s_open);
    }
}
