using System.Globalization;

namespace IserBlockd.Daemon.Configuration;

/// <summary>
/// Where the configuration's checks put what they find (every problem with its path, so one run names them all), and
/// the checks every section shares: seconds, ranges, absolute paths, simple names.
/// </summary>
internal sealed class ConfigChecks(List<ConfigError> errors)
{
    private const double MaxSeconds = 86_400;
    public const int MaxUnixSocketPath = 107; // sun_path is 108 bytes with the terminating NUL

    /// <summary>How many problems were found so far (a section compares it before and after itself).</summary>
    public int Count => errors.Count;

    public void Error(string path, string message) => errors.Add(new ConfigError(path.TrimStart('.'), message));

    public TimeSpan Seconds(double? value, string path, TimeSpan defaultValue, double min)
    {
        if (value == null) return defaultValue;
        if (double.IsNaN(value.Value) || value < min || value > MaxSeconds)
        {
            Error(path, $"expected seconds from {min.ToString(CultureInfo.InvariantCulture)} to {MaxSeconds.ToString(CultureInfo.InvariantCulture)}, got {value.Value.ToString(CultureInfo.InvariantCulture)}");
            return defaultValue;
        }
        return TimeSpan.FromSeconds(value.Value);
    }

    public int? Range(int? value, string path, int min, int max)
    {
        if (value is { } v && (v < min || v > max))
        {
            Error(path, $"expected {min} to {max}, got {v}");
            return null;
        }
        return value;
    }

    public static bool IsAbsolutePath(string path) => path.Length > 1 && path[0] == '/' && !path.Contains('\0');

    public static bool IsSimpleName(string name) =>
        name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');
}
