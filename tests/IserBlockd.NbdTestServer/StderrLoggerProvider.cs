using Microsoft.Extensions.Logging;

namespace IserBlockd.NbdTestServer;

/// <summary>Plain one-line-per-message logging to stderr, so scripts can keep stdout for the READY line.</summary>
internal sealed class StderrLoggerProvider(LogLevel minimum) : ILoggerProvider, ILoggerFactory
{
    public ILogger CreateLogger(string categoryName) => new StderrLogger(minimum);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose() { }

    private sealed class StderrLogger(LogLevel minimum) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var line = $"{DateTime.Now:HH:mm:ss.fff} {logLevel,-11} {formatter(state, exception)}";
            if (exception != null) line += Environment.NewLine + exception;
            Console.Error.WriteLine(line);
        }
    }
}
