using System.Runtime.InteropServices;
using IserBlockd.Rdma.Interop;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Rdma;

/// <summary>Code the event loop runs on its thread when a registered descriptor becomes readable.</summary>
public interface IReadableHandler
{
    /// <summary>Runs on the loop thread; must drain what is readable without blocking.</summary>
    void OnReadable();
}

/// <summary>
/// One dedicated thread waiting in <c>epoll_wait</c> on the RDMA descriptors (completion channels, CM event
/// channels), all non-blocking and level-triggered. No thread blocks per connection: a readable descriptor runs its
/// handler on this thread, which drains it (polls the CQ, reads CM events) and completes whatever waits.
/// </summary>
public sealed unsafe class RdmaEventLoop : IDisposable
{
    private static readonly Lazy<RdmaEventLoop> s_shared = new(() => new RdmaEventLoop("rdma-events"));

    private readonly int _epollFd;
    private readonly int _wakeFd;
    private readonly Thread _thread;
    private readonly object _gate = new();
    private Registration?[] _registrations = new Registration?[16];
    private int _generation;
    private volatile bool _stopping;

    /// <summary>The process-wide loop, started on first use.</summary>
    public static RdmaEventLoop Shared => s_shared.Value;

    public RdmaEventLoop(string name)
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64)
            throw new PlatformNotSupportedException("The RDMA event loop mirrors the x86-64 layout of struct epoll_event; this architecture is not supported.");
        _epollFd = LibC.epoll_create1(LibC.EPOLL_CLOEXEC);
        if (_epollFd < 0) throw RdmaException.FromErrno("epoll_create1", Marshal.GetLastPInvokeError());
        _wakeFd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        if (_wakeFd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            LibC.close(_epollFd);
            throw RdmaException.FromErrno("eventfd", errno);
        }
        var ev = new EpollEvent { Events = LibC.EPOLLIN, Data = ulong.MaxValue };
        if (LibC.epoll_ctl(_epollFd, LibC.EPOLL_CTL_ADD, _wakeFd, &ev) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            LibC.close(_wakeFd);
            LibC.close(_epollFd);
            throw RdmaException.FromErrno("epoll_ctl(ADD eventfd)", errno);
        }
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Raised (on the loop thread) when a handler throws; the loop carries on.</summary>
    public event Action<Exception>? HandlerFailed;

    /// <summary>True when called from the loop thread itself.</summary>
    public bool IsLoopThread => Thread.CurrentThread == _thread;

    /// <summary>Puts a descriptor in non-blocking mode so a read after a spurious wakeup returns EAGAIN.</summary>
    internal static void SetNonBlocking(int fd, string owner)
    {
        var flags = LibC.fcntl(fd, LibC.F_GETFL, 0);
        if (flags < 0 || LibC.fcntl(fd, LibC.F_SETFL, flags | LibC.O_NONBLOCK) < 0)
            throw RdmaException.FromErrno($"fcntl(O_NONBLOCK) on the {owner} descriptor", Errno.Last);
    }

    /// <summary>
    /// Watches <paramref name="fd"/> (made non-blocking here) and runs <paramref name="handler"/> whenever it is
    /// readable. Dispose the result to stop; once Dispose returns, the handler is not running and will not run again.
    /// </summary>
    public IDisposable Register(int fd, IReadableHandler handler, string owner)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        SetNonBlocking(fd, owner);
        Registration registration;
        lock (_gate)
        {
            var slot = Array.IndexOf(_registrations, null);
            if (slot < 0)
            {
                slot = _registrations.Length;
                Array.Resize(ref _registrations, _registrations.Length * 2);
            }
            registration = new Registration(this, fd, handler, slot, ++_generation);
            _registrations[slot] = registration;
        }
        var ev = new EpollEvent { Events = LibC.EPOLLIN, Data = registration.Key };
        if (LibC.epoll_ctl(_epollFd, LibC.EPOLL_CTL_ADD, fd, &ev) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            lock (_gate) _registrations[registration.Slot] = null;
            throw RdmaException.FromErrno($"epoll_ctl(ADD {owner} fd {fd})", errno);
        }
        return registration;
    }

    private void Unregister(Registration registration)
    {
        LibC.epoll_ctl(_epollFd, LibC.EPOLL_CTL_DEL, registration.Fd, null);
        // The loop may be inside this handler (or about to enter it from an already returned batch): taking the
        // registration's lock waits for a running call, and Closed stops later ones. Reentrant on the loop thread.
        lock (registration)
        {
            registration.Closed = true;
        }
        lock (_gate)
        {
            if (_registrations[registration.Slot] == registration) _registrations[registration.Slot] = null;
        }
    }

    private void Run()
    {
        const int batch = 32;
        var events = stackalloc EpollEvent[batch];
        while (!_stopping)
        {
            var n = LibC.epoll_wait(_epollFd, events, batch, -1);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EINTR) continue;
                HandlerFailed?.Invoke(RdmaException.FromErrno("epoll_wait", errno));
                return;
            }
            for (var i = 0; i < n; i++)
            {
                var key = events[i].Data;
                if (key == ulong.MaxValue) continue; // wake-up for shutdown
                Registration? registration;
                lock (_gate)
                {
                    var slot = (int)(key & 0xFFFF_FFFF);
                    registration = slot < _registrations.Length ? _registrations[slot] : null;
                }
                if (registration == null || registration.Key != key) continue;
                lock (registration)
                {
                    if (registration.Closed) continue;
                    try
                    {
                        registration.Handler.OnReadable();
                    }
                    catch (Exception e)
                    {
                        HandlerFailed?.Invoke(e);
                    }
                }
            }
        }
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        ulong one = 1;
        LibC.write(_wakeFd, &one, sizeof(ulong));
        if (!IsLoopThread) _thread.Join();
        LibC.close(_wakeFd);
        LibC.close(_epollFd);
    }

    private sealed class Registration(RdmaEventLoop loop, int fd, IReadableHandler handler, int slot, int generation) : IDisposable
    {
        public int Fd { get; } = fd;
        public IReadableHandler Handler { get; } = handler;
        public int Slot { get; } = slot;
        public ulong Key { get; } = ((ulong)(uint)generation << 32) | (uint)slot;
        public bool Closed { get; set; }

        public void Dispose()
        {
            if (!Closed) loop.Unregister(this);
        }
    }
}
