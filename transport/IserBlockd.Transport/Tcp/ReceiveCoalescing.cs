using System.Diagnostics;
using System.Net.Sockets;

namespace IserBlockd.Transport.Tcp;

/// <summary>
/// Holds the receive loop's wake-up at a high queue depth until a good part of the owed answers has come: before the
/// wait for the next PDU, SO_RCVLOWAT is raised to half the bytes the owed answers bring if they all succeed (at most
/// the receive buffer), so that the kernel wakes the loop once for many answers instead of once or twice per answer.
/// It stays raised from one such wait to the next (a system call only when the figure changes) and goes back to 1
/// before any read inside a PDU, whose rest must not wait for more than itself, whenever fewer than
/// <see cref="TcpTransportOptions.ReceiveCoalescingMinAnswers"/> are owed (QD1 among them: nothing is ever held there),
/// and when the answers are so large that the hold would not span two of them. Large READs (64 KiB or more on
/// average) are the exception at any depth: their Data-In is read straight into the task's buffer, not through the
/// receive buffer, and each segment (256 KiB from most targets) would wake the loop once; the hold is for half the
/// bytes owed up to 512 KiB, about two segments.
/// Only answers that do not come (failed READs answer with a status alone, a target that stalls) leave a hold short;
/// <see cref="HoldDeadlineWatch"/> ends any hold that outlives <see cref="TcpTransportOptions.ReceiveCoalescingWindow"/>.
/// </summary>
internal sealed class ReceiveCoalescing : IDisposable
{
    private const int SolSocket = 1, SoRcvLowat = 18;
    /// <summary>An average owed answer this large is a READ whose Data-In goes straight into its task's buffer, not
    /// through the receive buffer (the hold for it is not bounded by that buffer, and a read at a PDU boundary should
    /// take little of it).</summary>
    public const int LargeAnswer = 64 << 10;

    /// <summary>Whether the answers owed average <see cref="LargeAnswer"/> or more.</summary>
    public static bool AreLarge(int answers, long bytes) => answers > 0 && bytes >= (long)answers * LargeAnswer;
    /// <summary>The most a hold for large READs waits for: two 256 KiB Data-In segments.</summary>
    private const int LargeHold = 512 << 10;

    private readonly Socket _socket;
    private readonly HoldDeadlineWatch _watch;
    private readonly int _minAnswers;
    private readonly int _maxBytes;
    private readonly long _windowTicks;
    private readonly object _lock = new();
    private readonly byte[] _option = new byte[sizeof(int)];
    private int _owedAnswers;
    private long _owedBytes;
    private bool _holding;
    private bool _disposed;
    /// <summary>Stopwatch timestamp the current hold ends by.</summary>
    private long _holdEnds;
    /// <summary>SO_RCVLOWAT as last set (1 is the kernel's default).</summary>
    private int _lowWater = 1;

    public ReceiveCoalescing(Socket socket, TcpTransportOptions options, int maxBytes, HoldDeadlineWatch? watch = null)
    {
        _watch = watch ?? HoldDeadlineWatch.Shared;
        _socket = socket;
        _minAnswers = options.ReceiveCoalescingMinAnswers;
        _windowTicks = (long)(Math.Min(options.ReceiveCoalescingWindow.TotalSeconds, 1e6) * Stopwatch.Frequency);
        _maxBytes = maxBytes;
        _watch.Watch(this);
    }

    /// <summary>Whether SO_RCVLOWAT is raised now (for tests).</summary>
    public bool Holding { get { lock (_lock) return _holding; } }

    /// <summary>The receive loop's count of answers owed and the bytes they bring, given before it waits.</summary>
    public void Expect(int answers, long bytes)
    {
        _owedAnswers = answers;
        _owedBytes = bytes;
    }

    /// <summary>Before a read at a PDU boundary: raises SO_RCVLOWAT when many answers are owed, less the
    /// <paramref name="buffered"/> bytes already here; otherwise puts it back to 1.</summary>
    public void Hold(int buffered)
    {
        long want = 0;
        if (_minAnswers > 0 && _owedAnswers > 0)
        {
            var average = _owedBytes / _owedAnswers;
            if (AreLarge(_owedAnswers, _owedBytes))
            {
                // Large READs: each Data-In segment (256 KiB from most targets) would wake the loop once; hold for two.
                want = Math.Min(_owedBytes / 2, LargeHold) - buffered;
            }
            else if (_owedAnswers >= _minAnswers)
            {
                // Only where one wake-up can take two answers or more: large answers wake the loop once each anyway,
                // and holding for them would only add the system calls.
                want = Math.Min(_owedBytes / 2, _maxBytes);
                want = want < 2 * average ? 0 : want - buffered;
            }
        }
        if (want <= 1)
        {
            Release();
            return;
        }
        long deadline;
        lock (_lock)
        {
            if (_disposed || !Set((int)want)) return;
            // Each wait gets its own window, even where the low-water mark stays as it was.
            _holding = true;
            deadline = _holdEnds = Stopwatch.GetTimestamp() + _windowTicks;
        }
        _watch.HoldStarted(deadline);
    }

    /// <summary>SO_RCVLOWAT back to 1 (the kernel then wakes the loop at once if anything is there).</summary>
    public void Release()
    {
        if (!Volatile.Read(ref _holding)) return;
        lock (_lock)
        {
            if (!_holding || _disposed) return;
            _holding = false;
            Set(1);
        }
    }

    /// <summary>Whether <see cref="HoldDeadlineWatch"/> still watches this (until disposed).</summary>
    internal bool Watched => _watch.Watches(this);

    /// <summary>For <see cref="HoldDeadlineWatch"/>: ends the hold in place if it is a window old; returns the deadline
    /// of the hold still in place (Stopwatch ticks), or <see cref="long.MaxValue"/> if none is.</summary>
    internal long EndIfOverdue(long now)
    {
        lock (_lock)
        {
            if (!_holding || _disposed) return long.MaxValue;
            if (now < _holdEnds) return _holdEnds;
            _holding = false;
            Set(1);
            return long.MaxValue;
        }
    }

    private bool Set(int bytes)
    {
        if (bytes == _lowWater) return true;
        BitConverter.TryWriteBytes(_option, bytes);
        try
        {
            _socket.SetRawSocketOption(SolSocket, SoRcvLowat, _option);
            _lowWater = bytes;
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false; // the connection is going: its receive fails by itself
        }
    }

    public void Dispose()
    {
        lock (_lock) _disposed = true;
        _watch.Forget(this);
    }
}
