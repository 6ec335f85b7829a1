using System.Net.Sockets;

namespace IserBlockd.Transport.Tcp;

/// <summary>
/// Holds the receive loop's wake-up at a high queue depth until several answers have come: before the wait for the next
/// PDU, SO_RCVLOWAT is raised to what about half the owed answers (at most <see cref="MaxAnswersPerWake"/>) usually
/// take, so that the kernel wakes the loop once for all of them instead of once or twice per answer. It stays raised
/// from one such wait to the next (a system call only when the figure changes) and goes back to 1 before any read in
/// the middle of a PDU, whose rest must not wait for more than itself. The wait is bounded: a timer puts SO_RCVLOWAT back to 1 after <see cref="TcpTransportOptions.ReceiveCoalescingWindow"/>,
/// for answers shorter than expected (a failed READ), a NOP-In or an R2T. With fewer answers owed than
/// <see cref="TcpTransportOptions.ReceiveCoalescingMinAnswers"/> (QD1 among them) nothing is held.
/// </summary>
internal sealed class ReceiveCoalescing : IDisposable
{
    /// <summary>More per wake-up buys little (measured: 8 and 16 differ by a few per cent of CPU per I/O).</summary>
    public const int MaxAnswersPerWake = 16;
    private const int SolSocket = 1, SoRcvLowat = 18;
    /// <summary>An answer without data: a SCSI Response or a Data-In's header.</summary>
    private const int HeaderOnlyAnswer = 48;

    private readonly Socket _socket;
    private readonly int _minAnswers;
    private readonly int _maxBytes;
    private readonly TimeSpan _window;
    private readonly Timer _deadline;
    private readonly object _lock = new();
    private readonly byte[] _option = new byte[sizeof(int)];
    private int _owed;
    private bool _holding;
    /// <summary>SO_RCVLOWAT as last set (1 is the kernel's default).</summary>
    private int _lowWater = 1;
    private bool _disposed;
    // Bytes per answer, from what the socket delivered between hints (smoothed).
    private long _bytes, _answers, _bytesAtHint, _answersAtHint;
    private int _bytesPerAnswer = HeaderOnlyAnswer;

    public ReceiveCoalescing(Socket socket, TcpTransportOptions options, int maxBytes)
    {
        _socket = socket;
        _minAnswers = options.ReceiveCoalescingMinAnswers;
        _window = options.ReceiveCoalescingWindow;
        _maxBytes = maxBytes;
        _deadline = new Timer(static s => ((ReceiveCoalescing)s!).Release(), this, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>Whether SO_RCVLOWAT is raised now (for tests).</summary>
    public bool Holding { get { lock (_lock) return _holding; } }

    /// <summary>The receive loop's count of answers owed, given before it waits.</summary>
    public void Expect(int answers) => _owed = answers;

    /// <summary>Bytes the socket delivered, and answers (PDUs with a status) among the PDUs received.</summary>
    public void Delivered(int bytes) => _bytes += bytes;

    public void Answered() => _answers++;

    /// <summary>Before a read at a PDU boundary: raises SO_RCVLOWAT when many answers are owed, less the
    /// <paramref name="buffered"/> bytes already here, and arms the window; otherwise puts it back to 1.</summary>
    public void Hold(int buffered)
    {
        var owed = _owed;
        if (_minAnswers <= 0 || owed < _minAnswers)
        {
            Release();
            return;
        }
        var answers = _answers - _answersAtHint;
        if (answers > 0)
        {
            var sample = (int)Math.Min((_bytes - _bytesAtHint) / answers, _maxBytes);
            _bytesPerAnswer = (_bytesPerAnswer * 3 + Math.Max(sample, HeaderOnlyAnswer)) / 4;
            _bytesAtHint = _bytes;
            _answersAtHint = _answers;
        }
        var want = Math.Min((long)Math.Min(MaxAnswersPerWake, owed / 2) * _bytesPerAnswer, _maxBytes) - buffered;
        if (want <= 1)
        {
            Release();
            return;
        }
        lock (_lock)
        {
            if (_disposed || !Set((int)want)) return;
            _holding = true;
        }
        _deadline.Change(_window, Timeout.InfiniteTimeSpan);
    }

    /// <summary>SO_RCVLOWAT back to 1: before a read inside a PDU, with few answers owed, or when the window has
    /// passed (the kernel then wakes the loop at once if anything is there).</summary>
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
        _deadline.Dispose();
    }
}
