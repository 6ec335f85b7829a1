namespace IserBlockd.Daemon.Logging;

/// <summary>What the process's standard error is connected to, which decides how console logs look.</summary>
public enum LogConsoleKind
{
    /// <summary>A person's terminal: colors, timestamps.</summary>
    Terminal,
    /// <summary>The systemd journal: one "&lt;N&gt;" syslog priority prefix per line so journald keeps the level; no timestamps (journald adds them).</summary>
    Journal,
    /// <summary>A pipe or a file: plain text with timestamps, no colors.</summary>
    Plain,
}

public static class LogConsoleDetection
{
    /// <summary>systemd sets JOURNAL_STREAM when stdout/stderr go to the journal, and INVOCATION_ID for
    /// every unit it runs; a unit whose output is not a terminal ends in the journal too.</summary>
    public static LogConsoleKind Detect()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("JOURNAL_STREAM")))
            return LogConsoleKind.Journal;
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("INVOCATION_ID")) && Console.IsErrorRedirected)
            return LogConsoleKind.Journal;
        return Console.IsErrorRedirected ? LogConsoleKind.Plain : LogConsoleKind.Terminal;
    }
}
