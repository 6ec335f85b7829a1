using System.Net.Sockets;

namespace IserBlockd.Transport.Tcp;

/// <summary>
/// Holds the receive loop's wake-up at a high queue depth until several answers have come: before the wait for the next
/// PDU, SO_RCVLOWAT is raised to what about half the owed answers (at most <see cref="MaxAnswersPerWake"/>) usually
/// take, so that the kernel wakes the loop once for all of them instead of once or twice per answer; after the wake-up
/// it is 1 again. The wait is bounded: a timer puts SO_RCVLOWAT back to 1 after <see cref="TcpTransportOptions.ReceiveCoalescingWindow"/>,
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

    /// <summary>Before a read at a PDU boundary with nothing buffered: raises SO_RCVLOWAT when many answers are owed,
    /// less the <paramref name="buffered"/> bytes already here. Returns whether it did (then call <see cref="Release"/>
    /// once the read is back).</summary>
    public bool Hold(int buffered)
    {
        var owed = _owed;
        if (_minAnswers <= 0 || owed < _minAnswers) return false;
        var answers = _answers - _answersAtHint;
        if (answers > 0)
        {
            var sample = (int)Math.Min((_bytes - _bytesAtHint) / answers, _maxBytes);
            _bytesPerAnswer = (_bytesPerAnswer * 3 + Math.Max(sample, HeaderOnlyAnswer)) / 4;
            _bytesAtHint = _bytes;
            _answersAtHint = _answers;
        }
        var want = Math.Min((long)Math.Min(MaxAnswersPerWake, owed / 2) * _bytesPerAnswer, _maxBytes) - buffered;
        if (want <= 1) return false;
        lock (_lock)
        {
            if (_disposed) return false;
            if (!Set((int)want)) return false;
            _holding = true;
        }
        _deadline.Change(_window, Timeout.InfiniteTimeSpan);
        return true;
    }

    /// <summary>SO_RCVLOWAT back to 1: after the wake-up, or when the window has passed (the kernel then wakes the
    /// loop at once if anything is there).</summary>
    public void Release()
    {
        lock (_lock)
        {
            if (!_holding || _disposed) return;
            _holding = false;
            Set(1);
        }
    }

    private bool Set(int bytes)
    {
        BitConverter.TryWriteBytes(_option, bytes);
        try
        {
            _socket.SetRawSocketOption(SolSocket, SoRcvLowat, _option);
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
