using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace IserBlockd.BlockDev.Tests.Support;

/// <summary>
/// Listens to the runtime's GC AllocationTick events (one per ~100 KB allocated) while enabled, so an
/// allocation test that fails can say which types were being allocated.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private readonly ConcurrentDictionary<string, int> _types = new();
    private volatile bool _sampling;

    public IReadOnlyDictionary<string, int> Types => _types;

    public void Start() => _sampling = true;

    public void Stop() => _sampling = false;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1 /* GC */);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!_sampling || e.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) != true) return;
        var index = e.PayloadNames!.IndexOf("TypeName");
        if (index >= 0) _types.AddOrUpdate((string)e.Payload![index]!, 1, (_, n) => n + 1);
    }
}
