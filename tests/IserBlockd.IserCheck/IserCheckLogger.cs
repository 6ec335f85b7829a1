using Microsoft.Extensions.Logging;

namespace IserBlockd.IserCheck;

/// <summary>Log lines on stderr ("debug: ..."), so that stdout stays the tool's result.</summary>
internal sealed class IserCheckLoggerFactory(LogLevel minimum) : ILoggerFactory
{
    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, minimum);

    public void AddProvider(ILoggerProvider provider) { }

    public void Dispose() { }

    private sealed class Logger(string category, LogLevel minimum) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var text = $"{DateTime.Now:HH:mm:ss.fff} {logLevel.ToString().ToLowerInvariant()} [{category}] {formatter(state, exception)}";
            if (exception != null) text += $" ({exception.GetType().Name}: {exception.Message})";
            Console.Error.WriteLine(text);
        }
    }
}
