using System.Text.Json.Serialization;
using IserBlockd.Daemon.Configuration.Document;

namespace IserBlockd.Daemon.Configuration;

/// <summary>Source-generated (NativeAOT-safe) serializer for the configuration file. Unknown members are
/// refused; <see cref="ConfigSchemaChecker"/> reports them with their path before this ever runs.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(ConfigDocument))]
[JsonSerializable(typeof(List<LunDocument>))]
public sealed partial class ConfigJsonContext : JsonSerializerContext;
