using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Nbd.Streams;

/// <summary>
/// Moves a payload into a socket without copying it: <c>vmsplice</c> puts references to the payload's pages into a
/// pipe and <c>splice</c> moves them on into the socket, where a Unix socket keeps them as page references until
/// the peer reads them (the peer's read is then the only copy). The pipe is empty between calls: what the socket
/// does not take now is dropped from the pipe into /dev/null, and the caller sends those bytes the ordinary way.
/// </summary>
internal sealed unsafe class PageSplicePipe : IDisposable
{
    /// <summary>One pipe's worth is one vmsplice + splice; 1 MiB is the unprivileged default of fs.pipe-max-size.</summary>
    private const int WantedCapacity = 1 << 20;

    private readonly FileDescriptorHandle _read;
    private readonly FileDescriptorHandle _write;
    private readonly FileDescriptorHandle _null;
    private readonly int _capacity;
    private bool _broken;

    private PageSplicePipe(FileDescriptorHandle read, FileDescriptorHandle write, FileDescriptorHandle devNull, int capacity)
    {
        _read = read;
        _write = write;
        _null = devNull;
        _capacity = capacity;
    }

    /// <summary>A pipe of up to 1 MiB, or null when the system gives none (the caller then copies).</summary>
    public static PageSplicePipe? TryCreate()
    {
        var fds = stackalloc int[2];
        if (LibC.pipe2(fds, LibC.O_NONBLOCK | LibC.O_CLOEXEC) != 0) return null;
        var read = new FileDescriptorHandle(fds[0]);
        var write = new FileDescriptorHandle(fds[1]);
        var devNull = LibC.open("/dev/null", LibC.O_WRONLY | LibC.O_CLOEXEC);
        if (devNull < 0)
        {
            read.Dispose();
            write.Dispose();
            return null;
        }
        // A smaller pipe (fs.pipe-max-size lowered) still works, in more calls.
        var capacity = LibC.fcntl(fds[1], LibC.F_SETPIPE_SZ, WantedCapacity);
        if (capacity <= 0) capacity = 64 << 10;
        return new PageSplicePipe(read, write, new FileDescriptorHandle(devNull), capacity);
    }

    /// <summary>Sends from <paramref name="data"/> into the non-blocking socket <paramref name="socketFd"/> what it
    /// takes now, by page reference; returns how many bytes. Failures of the socket throw.</summary>
    public int Send(int socketFd, byte* data, int length)
    {
        if (_broken) return 0;
        var sent = 0;
        while (sent < length)
        {
            var vector = new LibC.IoVector { Base = data + sent, Length = (nuint)Math.Min(length - sent, _capacity) };
            var queued = LibC.vmsplice(_write.Fd, &vector, 1, LibC.SPLICE_F_NONBLOCK);
            if (queued <= 0)
            {
                var errno = Errno.Last;
                if (queued < 0 && errno == Errno.EINTR) continue;
                if (queued < 0 && errno != Errno.EAGAIN) throw new IOException($"vmsplice: {Errno.Describe(errno)}");
                return sent;
            }
            var moved = 0L;
            while (moved < queued)
            {
                var n = LibC.splice(_read.Fd, null, socketFd, null, (nuint)(queued - moved), LibC.SPLICE_F_MOVE | LibC.SPLICE_F_NONBLOCK);
                if (n > 0)
                {
                    moved += n;
                    continue;
                }
                var errno = Errno.Last;
                if (n < 0 && errno == Errno.EINTR) continue;
                Discard(queued - moved);
                if (n < 0 && errno != Errno.EAGAIN) throw new IOException($"splice: {Errno.Describe(errno)}");
                return sent + (int)moved;
            }
            sent += (int)moved;
        }
        return sent;
    }

    /// <summary>Drops what the socket did not take: those pages were not sent, and the next payload must not follow them.</summary>
    private void Discard(long count)
    {
        while (count > 0)
        {
            var n = LibC.splice(_read.Fd, null, _null.Fd, null, (nuint)count, LibC.SPLICE_F_NONBLOCK);
            if (n > 0)
            {
                count -= n;
                continue;
            }
            if (n < 0 && Errno.Last == Errno.EINTR) continue;
            // Stale pages would lead the next reply: never splice through this pipe again.
            _broken = true;
            throw new IOException($"could not empty the splice pipe: {(n < 0 ? Errno.Describe(Errno.Last) : "no progress")}");
        }
    }

    public void Dispose()
    {
        _read.Dispose();
        _write.Dispose();
        _null.Dispose();
    }
}
