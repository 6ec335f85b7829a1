using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Tests.Runtime;

/// <summary>Keeps every formatted log line, so that a test waits for what the code says it did.</summary>
internal sealed class RecordingLoggerFactory : ILoggerFactory, ILogger
{
    private readonly List<string> _lines = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider) { }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        TaskCompletionSource changed;
        lock (_lines)
        {
            _lines.Add(formatter(state, exception));
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }

    public int Count(string text) { lock (_lines) return _lines.Count(l => l.Contains(text, StringComparison.Ordinal)); }

    /// <summary>Waits (on log lines, not on a clock) until a line matches <paramref name="match"/>.</summary>
    public async Task WaitForAsync(Func<string, bool> match, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        while (true)
        {
            Task changed;
            lock (_lines)
            {
                if (_lines.Any(match)) return;
                changed = _changed.Task;
            }
            try
            {
                await changed.WaitAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                lock (_lines) throw new TimeoutException($"no such log line within {timeout.TotalSeconds} s; the log:\n{string.Join('\n', _lines)}");
            }
        }
    }

    public void Dispose() { }
}
