namespace IserBlockd.Daemon.Configuration;

/// <summary>The configuration cannot be used. Carries every problem found, each naming its field.</summary>
public sealed class ConfigException(string filePath, IReadOnlyList<ConfigError> errors)
    : Exception(Format(filePath, errors))
{
    /// <summary>EX_CONFIG from sysexits.h: what a service manager or script can tell apart from other failures.</summary>
    public const int ExitCode = 78;

    /// <summary>The file that was read (or a description such as "command line").</summary>
    public string FilePath { get; } = filePath;

    public IReadOnlyList<ConfigError> Errors { get; } = errors;

    private static string Format(string source, IReadOnlyList<ConfigError> errors) =>
        errors.Count == 1
            ? $"{source}: {errors[0]}"
            : $"{source}: {errors.Count} errors:" + string.Concat(errors.Select(e => "\n  " + e));
}
