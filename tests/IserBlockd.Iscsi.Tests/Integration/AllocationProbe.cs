using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>Samples allocations by type (the runtime's AllocationTick, every ~100 KB) to explain an allocation figure.</summary>
public sealed class AllocationProbe : EventListener
{
    public ConcurrentDictionary<string, long> Types { get; } = new();

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) != true || e.Payload == null) return;
        var index = e.PayloadNames!.IndexOf("TypeName");
        if (index >= 0) Types.AddOrUpdate((string)e.Payload[index]!, 1, (_, n) => n + 1);
    }

    public string Top(int count) => string.Join("\n", Types.OrderByDescending(t => t.Value).Take(count).Select(t => $"{t.Value,6} {t.Key}"));
}
