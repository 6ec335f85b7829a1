using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace IserBlockd.Daemon.Control;

/// <summary>Source-generated serializer for the control protocol (one JSON object per line).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(ControlSocketRequest))]
[JsonSerializable(typeof(ControlSocketResponse))]
[JsonSerializable(typeof(List<Cli.LunRates>))] // iserblockctl stats -o json: one report per line
public sealed partial class ControlJsonContext : JsonSerializerContext
{
    /// <summary>As <see cref="Default"/>, but leaves '+', '&lt;' and quotes in strings readable (URIs, messages):
    /// the peer is a program or a person reading JSON, never an HTML page.</summary>
    public static ControlJsonContext Readable => s_readable ??= new(new JsonSerializerOptions(Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    private static ControlJsonContext? s_readable;
}

/// <summary>Indented output for <c>iserblockctl -o json</c>.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(ControlSocketResponse))]
[JsonSerializable(typeof(List<SessionInfo>))]
[JsonSerializable(typeof(StatusInfo))]
[JsonSerializable(typeof(List<LunDescription>))]
[JsonSerializable(typeof(SessionInfo))]
[JsonSerializable(typeof(List<Cli.LunRates>))]
public sealed partial class ControlOutputJsonContext : JsonSerializerContext
{
    public static ControlOutputJsonContext Readable => s_readable ??= new(new JsonSerializerOptions(Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    private static ControlOutputJsonContext? s_readable;
}
