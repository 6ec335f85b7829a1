using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Display;

namespace IserBlockd.Daemon.Logging;

/// <summary>
/// Formats events for the systemd journal through stderr: every line (exception stack lines too)
/// starts with the sd-daemon(3) priority prefix "&lt;N&gt;", so journalctl -p filters and colors work.
/// </summary>
public sealed class JournalFormatter : ITextFormatter
{
    private readonly MessageTemplateTextFormatter _inner;
    [ThreadStatic] private static StringWriter? s_buffer;

    public JournalFormatter(string template = "{Component}: {Message:lj}{NewLine}{Exception}")
    {
        _inner = new MessageTemplateTextFormatter(template);
    }

    public static int Priority(LogEventLevel level) => level switch
    {
        LogEventLevel.Verbose or LogEventLevel.Debug => 7, // debug
        LogEventLevel.Information => 6,                   // info
        LogEventLevel.Warning => 4,                       // warning
        LogEventLevel.Error => 3,                         // err
        _ => 2,                                           // crit
    };

    public void Format(LogEvent logEvent, TextWriter output)
    {
        var buffer = s_buffer ??= new StringWriter();
        buffer.GetStringBuilder().Clear();
        _inner.Format(logEvent, buffer);
        var prefix = Priority(logEvent.Level) switch { 7 => "<7>", 6 => "<6>", 4 => "<4>", 3 => "<3>", _ => "<2>" };
        foreach (var line in buffer.ToString().AsSpan().TrimEnd('\n').EnumerateLines())
        {
            output.Write(prefix);
            output.Write(line);
            output.Write('\n');
        }
    }
}
