using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace IserBlockd.BlockDev.Nbd.Transport.Epoll;

/// <summary>
/// <see cref="INbdTransport"/> over a stream socket driven by our own edge-triggered epoll loop.
/// </summary>
/// <remarks>
/// <para>A receive or send is first tried right away (non-blocking); only when the socket is not ready
/// does it wait, and then the <see cref="EpollEventLoop"/> thread performs it when the socket becomes
/// ready and runs the awaiting code inline. This is what the runtime does for every socket of a
/// process with <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>, but for NBD sockets only, so the
/// daemon's other sockets keep the runtime's defaults. Measured with fio on two cores: 4x less CPU and
/// 8x fewer context switches per request than the default socket engine.</para>
/// <para>One receive and one send may be outstanding at a time (the NBD reader and writer loops);
/// the pending operations and their completion sources are reused, so nothing is allocated per call.
/// Every system call holds a reference on the socket handle, so a concurrent dispose can never make
/// the loop touch a closed (or reused) descriptor.</para>
/// </remarks>
public sealed unsafe class EpollSocketTransport : INbdTransport
{
    private readonly Socket _socket;
    private readonly SafeSocketHandle _handle;
    private readonly int _fd;
    private readonly EpollEventLoop _loop;
    private readonly ulong _registration;
    private readonly object _gate = new();
    private readonly Completion _receive = new();
    private readonly Completion _send = new();

    // Guarded by _gate.
    private Memory<byte> _receiveBuffer;
    private ReadOnlyMemory<byte> _sendBuffer;
    private bool _receivePending;
    private bool _sendPending;
    private bool _readable;
    private bool _writable;
    private bool _outputArmed;
    private bool _receiveShut;
    private bool _aborted;
    private int _disposed;

    private EpollSocketTransport(Socket socket, EpollEventLoop loop)
    {
        _socket = socket;
        _handle = socket.SafeHandle;
        _fd = (int)_handle.DangerousGetHandle();
        _loop = loop;
        RemoteDescription = SocketTransport.DescribePeer(socket);
        socket.Blocking = false;
        _registration = loop.Register(_fd, this);
    }

    /// <summary>Takes over a connected stream socket; it must not be used through <see cref="Socket"/>'s
    /// own asynchronous methods any more.</summary>
    public static EpollSocketTransport Create(Socket socket, int? sendBufferBytes = null, int? receiveBufferBytes = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (socket.SocketType != SocketType.Stream)
            throw new ArgumentException("NBD needs a stream socket.", nameof(socket));
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("The epoll transport is Linux-only; use SocketTransport.");
        SocketTransport.Configure(socket, sendBufferBytes, receiveBufferBytes);
        return new EpollSocketTransport(socket, EpollEventLoop.Next());
    }

    public string RemoteDescription { get; }

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer)
    {
        while (true)
        {
            var received = TryReceive(buffer.Span, out var errno);
            if (received >= 0) return new ValueTask<int>(received);
            if (errno == EpollNative.EINTR) continue;
            if (errno != EpollNative.EAGAIN) return ValueTask.FromException<int>(Failure("recv", errno));
            lock (_gate)
            {
                if (_receiveShut) return new ValueTask<int>(0);
                if (_readable)
                {
                    _readable = false; // readiness arrived since the attempt: try again
                    continue;
                }
                _receiveBuffer = buffer;
                _receivePending = true;
            }
            return new ValueTask<int>(_receive, _receive.Version);
        }
    }

    public ValueTask<int> SendAsync(ReadOnlyMemory<byte> buffer)
    {
        while (true)
        {
            var sent = TrySend(buffer.Span, out var errno);
            if (sent >= 0) return new ValueTask<int>(sent);
            if (errno == EpollNative.EINTR) continue;
            if (errno != EpollNative.EAGAIN) return ValueTask.FromException<int>(Failure("send", errno));
            lock (_gate)
            {
                if (_aborted) return ValueTask.FromException<int>(new IOException("The connection was aborted."));
                if (_writable)
                {
                    _writable = false;
                    continue;
                }
                _sendBuffer = buffer;
                _sendPending = true;
                if (!_outputArmed) ArmOutput(true);
            }
            return new ValueTask<int>(_send, _send.Version);
        }
    }

    /// <summary>Called on the loop thread with the events epoll reported.</summary>
    internal void OnReady(uint events)
    {
        if ((events & (EpollNative.EPOLLIN | EpollNative.EPOLLRDHUP | EpollNative.EPOLLHUP | EpollNative.EPOLLERR)) != 0)
            CompleteReceive();
        if ((events & (EpollNative.EPOLLOUT | EpollNative.EPOLLHUP | EpollNative.EPOLLERR)) != 0)
            CompleteSend();
    }

    private void CompleteReceive()
    {
        Memory<byte> buffer;
        lock (_gate)
        {
            if (!_receivePending)
            {
                _readable = true;
                return;
            }
            _receivePending = false;
            buffer = _receiveBuffer;
            _receiveBuffer = default;
        }
        while (true)
        {
            var received = TryReceive(buffer.Span, out var errno);
            if (received >= 0)
            {
                _receive.SetResult(received); // the reader continues here, on the loop thread
                return;
            }
            if (errno == EpollNative.EINTR) continue;
            if (errno == EpollNative.EAGAIN)
            {
                lock (_gate)
                {
                    if (_receiveShut) break;
                    if (!_readable)
                    {
                        _receiveBuffer = buffer; // a stale edge: wait for the next one
                        _receivePending = true;
                        return;
                    }
                    _readable = false;
                }
                continue;
            }
            _receive.SetException(Failure("recv", errno));
            return;
        }
        _receive.SetResult(0); // receiving was shut down meanwhile
    }

    private void CompleteSend()
    {
        ReadOnlyMemory<byte> buffer;
        lock (_gate)
        {
            if (!_sendPending)
            {
                // Nothing waits to send: remember the readiness and stop listening for more of it.
                _writable = true;
                if (_outputArmed) ArmOutput(false);
                return;
            }
            _sendPending = false;
            buffer = _sendBuffer;
            _sendBuffer = default;
        }
        while (true)
        {
            var sent = TrySend(buffer.Span, out var errno);
            if (sent >= 0)
            {
                _send.SetResult(sent);
                return;
            }
            if (errno == EpollNative.EINTR) continue;
            if (errno == EpollNative.EAGAIN)
            {
                lock (_gate)
                {
                    if (_aborted) break;
                    if (!_writable)
                    {
                        _sendBuffer = buffer;
                        _sendPending = true;
                        return;
                    }
                    _writable = false;
                }
                continue;
            }
            _send.SetException(Failure("send", errno));
            return;
        }
        _send.SetException(new IOException("The connection was aborted."));
    }

    /// <summary>Adds or removes output interest; under <see cref="_gate"/>, so interest always matches
    /// whether a send is waiting.</summary>
    private void ArmOutput(bool output)
    {
        if (!TryReferenceHandle()) return;
        try
        {
            if (_loop.Modify(_registration, _fd, output)) _outputArmed = output;
        }
        finally
        {
            _handle.DangerousRelease();
        }
    }

    /// <summary>Holds the socket handle open for one system call (release it after); false once it is closed.</summary>
    private bool TryReferenceHandle()
    {
        var referenced = false;
        try
        {
            _handle.DangerousAddRef(ref referenced);
        }
        catch (ObjectDisposedException)
        {
        }
        return referenced;
    }

    /// <summary>recv(2) without blocking; bytes received (0 at end of stream) or -1 with errno.</summary>
    private int TryReceive(Span<byte> destination, out int errno)
    {
        errno = 0;
        if (!TryReferenceHandle()) return 0; // closed: end of stream
        try
        {
            fixed (byte* p = destination)
            {
                var n = EpollNative.recv(_fd, p, (nuint)destination.Length, EpollNative.MSG_DONTWAIT);
                if (n < 0) errno = Marshal.GetLastPInvokeError();
                return (int)n;
            }
        }
        finally
        {
            _handle.DangerousRelease();
        }
    }

    /// <summary>send(2) without blocking or SIGPIPE; bytes sent or -1 with errno.</summary>
    private int TrySend(ReadOnlySpan<byte> source, out int errno)
    {
        errno = 0;
        if (!TryReferenceHandle())
        {
            errno = 9; // EBADF: closed
            return -1;
        }
        try
        {
            fixed (byte* p = source)
            {
                var n = EpollNative.send(_fd, p, (nuint)source.Length, EpollNative.MSG_DONTWAIT | EpollNative.MSG_NOSIGNAL);
                if (n < 0) errno = Marshal.GetLastPInvokeError();
                return (int)n;
            }
        }
        finally
        {
            _handle.DangerousRelease();
        }
    }

    private static IOException Failure(string call, int errno) =>
        new($"{call} failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);

    public void ShutdownReceive()
    {
        Shutdown(EpollNative.SHUT_RD);
        FinishPending(sendFailure: null);
    }

    public void Abort()
    {
        Shutdown(EpollNative.SHUT_RDWR);
        FinishPending(new IOException("The connection was aborted."));
    }

    private void Shutdown(int how)
    {
        if (!TryReferenceHandle()) return;
        try
        {
            EpollNative.shutdown(_fd, how);
        }
        finally
        {
            _handle.DangerousRelease();
        }
    }

    /// <summary>Ends a waiting receive with end-of-stream (and makes later ones return 0 at once) and,
    /// when <paramref name="sendFailure"/> is given, fails a waiting send (and later ones).</summary>
    private void FinishPending(IOException? sendFailure)
    {
        bool receive, send = false;
        lock (_gate)
        {
            _receiveShut = true;
            receive = _receivePending;
            _receivePending = false;
            _receiveBuffer = default;
            if (sendFailure != null)
            {
                _aborted = true;
                send = _sendPending;
                _sendPending = false;
                _sendBuffer = default;
            }
        }
        if (receive) _receive.SetResult(0);
        if (send) _send.SetException(sendFailure!);
    }

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return ValueTask.CompletedTask;
        _loop.Unregister(_registration, _fd);
        FinishPending(new IOException("The connection was closed."));
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>A reusable completion whose awaiter runs inline on the completing (loop) thread.</summary>
    private sealed class Completion : IValueTaskSource<int>
    {
        private ManualResetValueTaskSourceCore<int> _core; // mutable struct: never readonly

        public short Version => _core.Version;

        public void SetResult(int value) => _core.SetResult(value);

        public void SetException(Exception error) => _core.SetException(error);

        public int GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                _core.Reset();
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
