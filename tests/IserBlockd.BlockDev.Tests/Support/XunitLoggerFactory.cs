using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Support;

/// <summary>Server log lines into the test's output, so a failing test shows what the server saw.</summary>
internal sealed class XunitLoggerFactory(ITestOutputHelper output, LogLevel minimum = LogLevel.Debug) : ILoggerFactory
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines { get { lock (_lines) return _lines.ToArray(); } }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose() { }

    private sealed class Logger(XunitLoggerFactory factory) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= factory._minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var line = $"[{logLevel}] {formatter(state, exception)}" + (exception == null ? "" : " " + exception.Message);
            lock (factory._lines) factory._lines.Add(line);
            try { factory._output.WriteLine(line); }
            catch (InvalidOperationException) { } // the test already finished
        }
    }

    private readonly ITestOutputHelper _output = output;
    private readonly LogLevel _minimum = minimum;
}
