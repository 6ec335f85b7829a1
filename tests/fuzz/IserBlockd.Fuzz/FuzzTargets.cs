using IserBlockd.Fuzz.Targets;

namespace IserBlockd.Fuzz;

/// <summary>Every harness, by name.</summary>
public static class FuzzTargets
{
    public static IReadOnlyList<IFuzzTarget> All { get; } =
    [
        new IscsiPduTarget(),
        new IscsiLoginTarget(),
        new IscsiSessionTarget(),
        new IscsiTextTarget(),
        new ScsiDataTarget(),
        new NbdServerTarget(),
        new NbdProtocolTarget(),
        new NetlinkTarget(),
        new ConfigTarget(),
    ];

    public static IFuzzTarget? Find(string name) => All.FirstOrDefault(t => t.Name == name);
}
