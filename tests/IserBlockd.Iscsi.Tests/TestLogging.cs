using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests;

/// <summary>An ILoggerFactory that writes to the xunit test output and keeps every line for assertions.</summary>
public sealed class TestLoggerFactory(ITestOutputHelper? output = null) : ILoggerFactory
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get { lock (_lines) return [.. _lines]; }
    }

    public string Text => string.Join('\n', Lines);

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void AddProvider(ILoggerProvider provider) { }

    public void Dispose() { }

    private void Write(LogLevel level, string message)
    {
        var line = $"{level}: {message}";
        lock (_lines) _lines.Add(line);
        try { output?.WriteLine(line); }
        catch (InvalidOperationException) { /* the test already finished */ }
    }

    private sealed class Logger(TestLoggerFactory owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => owner.Write(logLevel, formatter(state, exception));
    }
}
