using System.Buffers;
using System.Text.Json;
using System.Text.Unicode;
using IserBlockd.Daemon.Configuration.Document;

namespace IserBlockd.Daemon.Configuration;

/// <summary>Reads, checks and validates the configuration file; throws <see cref="ConfigException"/>
/// naming every bad field.</summary>
public static class ConfigLoader
{
    private static readonly JsonDocumentOptions DocumentOptions = new()
    {
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
        MaxDepth = 32,
    };

    public static DaemonSettings Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(path, [new ConfigError("", $"cannot read the configuration file: {e.Message}")]);
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses configuration text; <paramref name="source"/> names it in errors.</summary>
    public static DaemonSettings Parse(ReadOnlyMemory<byte> json, string source)
    {
        var document = ParseDocument(json, source);
        var errors = new List<ConfigError>();
        var settings = ConfigValidator.Validate(document, errors);
        if (settings == null) throw new ConfigException(source, errors);
        return settings;
    }

    /// <summary>The file as written, after the structural check: unknown fields and wrong types are errors.</summary>
    public static ConfigDocument ParseDocument(ReadOnlyMemory<byte> json, string source)
    {
        var errors = new List<ConfigError>();
        // JsonDocument checks the UTF-8 of strings only when they are read, as an InvalidOperationException.
        if (!Utf8.IsValid(json.Span))
            throw new ConfigException(source, [new ConfigError("", $"the configuration is not valid UTF-8 (bad byte at offset {FirstInvalidUtf8(json.Span)})")]);
        JsonDocument parsed;
        try
        {
            parsed = JsonDocument.Parse(json, DocumentOptions);
        }
        catch (JsonException e)
        {
            throw new ConfigException(source, [new ConfigError("", SyntaxError(e))]);
        }

        using (parsed)
        {
            var root = parsed.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new ConfigException(source, [new ConfigError("", "the configuration must be a JSON object ({ ... })")]);
            ConfigSchemaChecker.Check(root, ConfigJsonContext.Default.ConfigDocument, "", errors);
            if (errors.Count > 0) throw new ConfigException(source, errors);
            try
            {
                return root.Deserialize(ConfigJsonContext.Default.ConfigDocument)
                    ?? throw new ConfigException(source, [new ConfigError("", "the configuration is null")]);
            }
            catch (JsonException e)
            {
                // The structural check should have caught this; say where anyway.
                throw new ConfigException(source, [new ConfigError(TrimRootPath(e.Path), e.Message)]);
            }
        }
    }

    private static string SyntaxError(JsonException e)
    {
        var message = e.Message;
        var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (cut > 0) message = message[..cut].TrimEnd('.', ' ');
        return e.LineNumber is { } line
            ? $"not valid JSON at line {line + 1}, column {(e.BytePositionInLine ?? 0) + 1}: {message}"
            : $"not valid JSON: {message}";
    }

    private static string TrimRootPath(string? path) =>
        path == null ? "" : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        return Utf8.ToUtf16(bytes, chars, out var read, out _, replaceInvalidSequences: false) == OperationStatus.InvalidData ? read : bytes.Length;
    }
}
