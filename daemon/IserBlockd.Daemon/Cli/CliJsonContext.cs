using System.Text.Json.Serialization;

namespace IserBlockd.Daemon.Cli;

/// <summary>A target portal in <c>iserblockctl discover -o json</c>.</summary>
public sealed record DiscoveredPortalJson(string Address, int Port, int Tpgt);

/// <summary>A target in <c>iserblockctl discover -o json</c>.</summary>
public sealed record DiscoveredTargetJson(string Target, IReadOnlyList<DiscoveredPortalJson> Portals);

/// <summary><c>iserblockctl inquiry -o json</c>.</summary>
public sealed record InquiryJson
{
    public required string Target { get; init; }
    public required string Portal { get; init; }
    public required string Transport { get; init; }
    public required ulong Lun { get; init; }
    public required string Vendor { get; init; }
    public required string Product { get; init; }
    public required string Revision { get; init; }
    public required int DeviceType { get; init; }
    public string? SerialNumber { get; init; }
    public IReadOnlyList<string> Identifiers { get; init; } = [];
    public required ulong CapacityBytes { get; init; }
    public required ulong Blocks { get; init; }
    public required uint LogicalBlockSize { get; init; }
    public required uint PhysicalBlockSize { get; init; }
    public required bool ThinProvisioned { get; init; }
    public required bool Unmap { get; init; }
    public required bool WriteSameUnmap { get; init; }
}

/// <summary>Source-generated JSON for the command line (the binaries are NativeAOT: no reflection).</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(List<DiscoveredTargetJson>))]
[JsonSerializable(typeof(InquiryJson))]
public sealed partial class CliJsonContext : JsonSerializerContext;
