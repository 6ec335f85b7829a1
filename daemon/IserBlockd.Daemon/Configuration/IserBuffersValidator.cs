using IserBlockd.Daemon.Configuration.Document;
using IserBlockd.Rdma;
using IserBlockd.Transport.Iser;

namespace IserBlockd.Daemon.Configuration;

/// <summary>The <c>iser</c> section: the size classes of the registered data and bounce buffer pools.</summary>
internal static class IserBuffersValidator
{
    private const int MinPoolBufferSize = 4096;            // one page: registered buffers are page-aligned
    private const int MaxPoolBufferSize = 16 << 20;
    private const int MinLargestDataBuffer = 64 * 1024;    // the largest data buffer is the largest NBD request on iSER
    private const int MaxPoolBufferCount = 65536;

    public static IserDeviceOptions Check(IserDocument? doc, ConfigChecks checks)
    {
        var defaults = new IserDeviceOptions();
        if (doc == null) return defaults;
        var data = BufferClasses(doc.DataBuffers, "iser.dataBuffers", defaults.DataBuffers, checks);
        var bounce = BufferClasses(doc.BounceBuffers, "iser.bounceBuffers", defaults.BounceBuffers, checks);
        if (doc.DataBuffers is { Count: > 0 } && data.SizeClasses.Count > 0 && data.SizeClasses.Max(c => c.BufferSize) < MinLargestDataBuffer)
            checks.Error("iser.dataBuffers", $"the largest data buffer is the largest NBD request an iSER LUN accepts; give one size class of at least {MinLargestDataBuffer} bytes");
        return new IserDeviceOptions { DataBuffers = data, BounceBuffers = bounce, MemoryWindows = doc.MemoryWindows ?? defaults.MemoryWindows };
    }

    /// <summary>Size classes of a registered pool; on any error the defaults come back (the errors stop startup anyway).</summary>
    private static RegisteredBufferPoolOptions BufferClasses(List<BufferClassDocument?>? list, string path, RegisteredBufferPoolOptions defaults, ConfigChecks checks)
    {
        if (list == null) return defaults;
        if (list.Count == 0)
        {
            checks.Error(path, "needs at least one size class such as { \"size\": 1048576, \"count\": 32 }");
            return defaults;
        }
        var before = checks.Count;
        var classes = new List<BufferSizeClass>();
        var sizes = new Dictionary<int, int>();
        for (var i = 0; i < list.Count; i++)
        {
            var itemPath = $"{path}[{i}]";
            if (list[i] is not { } item)
            {
                checks.Error(itemPath, "expected an object such as { \"size\": 1048576, \"count\": 32 }, got null");
                continue;
            }
            if (item.Size is not { } size)
                checks.Error(itemPath + ".size", "required: the buffer size in bytes (a power of two from 4096 to 16777216)");
            else if (size is < MinPoolBufferSize or > MaxPoolBufferSize || (size & (size - 1)) != 0)
                checks.Error(itemPath + ".size", $"expected a power of two from {MinPoolBufferSize} to {MaxPoolBufferSize} bytes, got {size}");
            else if (!sizes.TryAdd(size, i))
                checks.Error(itemPath + ".size", $"{size} bytes is already the size of {path}[{sizes[size]}]");
            if (item.Count is not { } count)
                checks.Error(itemPath + ".count", "required: how many buffers of this size to register");
            else if (count is < 1 or > MaxPoolBufferCount)
                checks.Error(itemPath + ".count", $"expected 1 to {MaxPoolBufferCount}, got {count}");
            if (item.Size is { } s && item.Count is { } n && (long)s * n > int.MaxValue)
                checks.Error(itemPath, $"{s} bytes × {n} is more than 2 GiB; one size class is one registration of at most 2 GiB");
            if (item.Size is { } okSize && item.Count is { } okCount) classes.Add(new BufferSizeClass(okSize, okCount));
        }
        return checks.Count == before ? new RegisteredBufferPoolOptions { SizeClasses = classes, Alignment = defaults.Alignment } : defaults;
    }
}
