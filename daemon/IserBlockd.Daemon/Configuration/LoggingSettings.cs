using Serilog.Events;

namespace IserBlockd.Daemon.Configuration;

/// <param name="Level">Minimum level for everything not named in <paramref name="Components"/>.</param>
/// <param name="Components">Minimum level per component: a namespace prefix (Serilog SourceContext) such as "IserBlockd.Iscsi".</param>
/// <param name="File">Also write the log to this file (plain text, one line per event).</param>
public sealed record LoggingSettings(
    LogEventLevel Level,
    IReadOnlyDictionary<string, LogEventLevel> Components,
    string? File)
{
    public static LoggingSettings Default { get; } = new(LogEventLevel.Information, new Dictionary<string, LogEventLevel>(), null);

    /// <summary>Accepts Serilog's level names and the usual aliases, case-insensitively.</summary>
    public static bool TryParseLevel(string text, out LogEventLevel level)
    {
        switch (text.ToLowerInvariant())
        {
            case "verbose": case "trace": level = LogEventLevel.Verbose; return true;
            case "debug": level = LogEventLevel.Debug; return true;
            case "information": case "info": level = LogEventLevel.Information; return true;
            case "warning": case "warn": level = LogEventLevel.Warning; return true;
            case "error": level = LogEventLevel.Error; return true;
            case "fatal": case "critical": level = LogEventLevel.Fatal; return true;
            default: level = default; return false;
        }
    }

    public const string ExpectedLevel = "\"verbose\", \"debug\", \"information\", \"warning\", \"error\" or \"fatal\"";
}
