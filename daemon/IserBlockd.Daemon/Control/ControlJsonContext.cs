using System.Text.Json.Serialization;

namespace IserBlockd.Daemon.Control;

/// <summary>Source-generated serializer for the control protocol (one JSON object per line).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ControlResponse))]
public sealed partial class ControlJsonContext : JsonSerializerContext;

/// <summary>Indented output for <c>iserblockctl -o json</c>.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(ControlResponse))]
[JsonSerializable(typeof(List<SessionInfo>))]
[JsonSerializable(typeof(StatusInfo))]
public sealed partial class ControlOutputJsonContext : JsonSerializerContext;
