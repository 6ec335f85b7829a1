using IserBlockd.Daemon.Configuration;
using IserBlockd.Iscsi.Security;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Sinks.SystemConsole.Themes;

namespace IserBlockd.Daemon.Logging;

/// <summary>Builds the Serilog logger for iserblockd: console (journal, terminal or plain) on stderr,
/// an optional file, levels per component. Standard output stays free for what commands print.</summary>
public static class DaemonLogging
{
    private const string TerminalTemplate = "{Timestamp:HH:mm:ss.fff} {Level:u3} {Component}: {Message:lj}{NewLine}{Exception}";
    private const string FileTemplate = "{Timestamp:yyyy-MM-dd HH:mm:ss.fff zzz} [{Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}";

    public static Logger CreateLogger(LoggingSettings settings, LogConsoleKind console, TextWriter? consoleWriter = null)
    {
        var configuration = new LoggerConfiguration()
            .MinimumLevel.Is(settings.Level)
            // The host's own chatter is noise for a daemon unless asked for.
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .Enrich.FromLogContext()
            .Enrich.With<ComponentEnricher>()
            // A secret must never reach a sink, whichever way it is logged.
            .Destructure.ByTransforming<ChapSecret>(_ => "(secret)");
        foreach (var (component, level) in settings.Components)
            configuration.MinimumLevel.Override(component, level);

        if (consoleWriter != null)
            configuration.WriteTo.Sink(new TextWriterSink(consoleWriter, console));
        else
            configuration = console switch
            {
                LogConsoleKind.Journal => configuration.WriteTo.Console(new JournalFormatter(), standardErrorFromLevel: LogEventLevel.Verbose),
                LogConsoleKind.Terminal => configuration.WriteTo.Console(outputTemplate: TerminalTemplate, theme: AnsiConsoleTheme.Code,
                    standardErrorFromLevel: LogEventLevel.Verbose, applyThemeToRedirectedOutput: false),
                _ => configuration.WriteTo.Console(outputTemplate: TerminalTemplate, theme: ConsoleTheme.None,
                    standardErrorFromLevel: LogEventLevel.Verbose),
            };

        if (settings.File != null)
            configuration.WriteTo.File(settings.File, outputTemplate: FileTemplate, shared: true, flushToDiskInterval: TimeSpan.FromSeconds(1));

        return configuration.CreateLogger();
    }

    /// <summary>Writes formatted events to a given writer; used by tests and by callers that capture logs.</summary>
    private sealed class TextWriterSink(TextWriter writer, LogConsoleKind kind) : ILogEventSink
    {
        private readonly Serilog.Formatting.ITextFormatter _formatter = kind == LogConsoleKind.Journal
            ? new JournalFormatter()
            : new Serilog.Formatting.Display.MessageTemplateTextFormatter(TerminalTemplate);

        public void Emit(LogEvent logEvent)
        {
            lock (writer) _formatter.Format(logEvent, writer);
        }
    }
}
