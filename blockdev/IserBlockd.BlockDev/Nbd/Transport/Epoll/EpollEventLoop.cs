using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace IserBlockd.BlockDev.Nbd.Transport.Epoll;

/// <summary>
/// A thread waiting in epoll_wait for the sockets registered with it (edge-triggered), and handing each
/// readiness to its <see cref="EpollSocketTransport"/>, which completes the waiting receive or send right
/// there. The NBD loops that await those operations therefore continue on this thread: one wake-up per
/// burst of requests, no hop to the thread pool.
/// </summary>
internal sealed unsafe class EpollEventLoop
{
    private const int MaxEvents = 64;
    private static readonly Lazy<EpollEventLoop[]> SharedLoops = new(() =>
        Enumerable.Range(0, Math.Clamp(Environment.ProcessorCount / 2, 1, 8)).Select(i => new EpollEventLoop(i)).ToArray());
    private static int _nextLoop;

    private readonly int _epoll;
    private readonly ConcurrentDictionary<ulong, EpollSocketTransport> _registrations = new();
    private long _nextId;

    private EpollEventLoop(int index)
    {
        _epoll = EpollNative.epoll_create1(EpollNative.EPOLL_CLOEXEC);
        if (_epoll < 0) throw new IOException($"epoll_create1 failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        var thread = new Thread(Run) { IsBackground = true, Name = $"NBD epoll {index}" };
        thread.UnsafeStart();
    }

    /// <summary>The process's loops (half the processors, at least one, at most eight), used in turn.</summary>
    public static EpollEventLoop Next()
    {
        var loops = SharedLoops.Value;
        return loops[(int)((uint)Interlocked.Increment(ref _nextLoop) % (uint)loops.Length)];
    }

    /// <summary>Edge-triggered interest in input (always) and, while a send waits, in output. Output
    /// interest is not kept: every reply the peer reads would otherwise wake the loop for nothing.</summary>
    public static uint Interest(bool output) =>
        EpollNative.EPOLLIN | EpollNative.EPOLLRDHUP | EpollNative.EPOLLET | (output ? EpollNative.EPOLLOUT : 0);

    public ulong Register(int fd, EpollSocketTransport transport)
    {
        var id = (ulong)Interlocked.Increment(ref _nextId);
        _registrations[id] = transport;
        var ev = stackalloc byte[16];
        EpollNative.WriteEvent(ev, Interest(output: false), id);
        if (EpollNative.epoll_ctl(_epoll, EpollNative.EPOLL_CTL_ADD, fd, ev) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            _registrations.TryRemove(id, out _);
            throw new IOException($"epoll_ctl(ADD) failed: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        return id;
    }

    /// <summary>Changes the interest set; when it adds output and the socket is writable already, epoll
    /// reports that at once, so no readiness is lost between a failed send and this call.</summary>
    public bool Modify(ulong id, int fd, bool output)
    {
        var ev = stackalloc byte[16];
        EpollNative.WriteEvent(ev, Interest(output), id);
        return EpollNative.epoll_ctl(_epoll, EpollNative.EPOLL_CTL_MOD, fd, ev) == 0;
    }

    /// <summary>Stops delivering events for the socket; call before closing it.</summary>
    public void Unregister(ulong id, int fd)
    {
        var ev = stackalloc byte[16];
        EpollNative.epoll_ctl(_epoll, EpollNative.EPOLL_CTL_DEL, fd, ev);
        _registrations.TryRemove(id, out _);
    }

    private void Run()
    {
        var events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * EpollNative.EventSize));
        while (true)
        {
            var count = EpollNative.epoll_wait(_epoll, events, MaxEvents, -1);
            if (count < 0)
            {
                if (Marshal.GetLastPInvokeError() == EpollNative.EINTR) continue;
                Environment.FailFast($"epoll_wait failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            }
            for (var i = 0; i < count; i++)
            {
                var (ready, id) = EpollNative.ReadEvent(events + i * EpollNative.EventSize);
                if (!_registrations.TryGetValue(id, out var transport)) continue;
                try
                {
                    transport.OnReady(ready);
                }
                catch (Exception)
                {
                    // Code continuing inline threw past its own handlers: that connection is beyond
                    // saving, but the loop (and every other connection on it) must go on.
                    transport.Abort();
                }
            }
        }
    }
}
