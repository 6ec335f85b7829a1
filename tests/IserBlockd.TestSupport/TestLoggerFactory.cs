using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace IserBlockd.TestSupport;

/// <summary>
/// The one logger of the tests and test tools: each line goes to the xunit test output (so a failing test shows
/// what the code under test saw) or to a writer such as standard error (the tools keep stdout for results), and
/// a test's factory keeps its lines for assertions.
/// </summary>
public sealed class TestLoggerFactory : ILoggerFactory
{
    private readonly ITestOutputHelper? _output;
    private readonly TextWriter? _writer;
    private readonly LogLevel _minimum;
    private readonly List<string>? _lines;

    /// <summary>Lines to the test output (when given) and kept in <see cref="Lines"/>.</summary>
    public TestLoggerFactory(ITestOutputHelper? output = null, LogLevel minimum = LogLevel.Trace)
    {
        _output = output;
        _minimum = minimum;
        _lines = [];
    }

    private TestLoggerFactory(TextWriter writer, LogLevel minimum)
    {
        _writer = writer;
        _minimum = minimum;
    }

    /// <summary>Time-stamped lines on standard error, none kept: for the long-running test tools.</summary>
    public static TestLoggerFactory ToStandardError(LogLevel minimum) => new(Console.Error, minimum);

    /// <summary>The lines logged so far (empty for <see cref="ToStandardError"/>).</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            if (_lines == null) return [];
            lock (_lines) return [.. _lines];
        }
    }

    public string Text => string.Join('\n', Lines);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose() { }

    private void Write(LogLevel level, string category, string message, Exception? exception)
    {
        if (_writer != null)
        {
            var text = $"{DateTime.Now:HH:mm:ss.fff} {level,-11} [{category}] {message}";
            if (exception != null) text += Environment.NewLine + exception;
            lock (_writer) _writer.WriteLine(text);
            return;
        }
        var line = $"{level}: {message}" + (exception == null ? "" : $" ({exception.GetType().Name}: {exception.Message})");
        lock (_lines!) _lines.Add(line);
        try { _output?.WriteLine(line); }
        catch (InvalidOperationException) { } // the test already finished
    }

    private sealed class Logger(TestLoggerFactory owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= owner._minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) owner.Write(logLevel, category, formatter(state, exception), exception);
        }
    }
}
