using System.Net.Sockets;
using IserBlockd.BlockDev.Nbd.Protocol;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Fuzz;

/// <summary>
/// Servers catch what goes wrong on one connection and log it; for the fuzzer, a logged exception that is not a
/// protocol or I/O error (an IndexOutOfRangeException, an ArgumentException...) is a finding all the same.
/// </summary>
public sealed class FindingLogger : ILoggerFactory, ILogger
{
    private Exception? _finding;

    /// <summary>Throws the first unexpected exception logged since the last call, and forgets it.</summary>
    public void ThrowIfFinding()
    {
        var finding = Interlocked.Exchange(ref _finding, null);
        if (finding != null) throw new InvalidOperationException($"logged unexpected {finding.GetType().Name}: {finding.Message}", finding);
    }

    public static bool IsExpected(Exception e) =>
        e is NbdProtocolException or IOException or SocketException or ObjectDisposedException or OperationCanceledException;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (exception != null && !IsExpected(exception)) Interlocked.CompareExchange(ref _finding, exception, null);
        else if (logLevel == LogLevel.Critical) Interlocked.CompareExchange(ref _finding, new InvalidOperationException(formatter(state, exception)), null);
    }

    public bool IsEnabled(LogLevel logLevel) => true;

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider) { }

    public void Dispose() { }
}
