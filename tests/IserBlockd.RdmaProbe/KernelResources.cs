using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace IserBlockd.RdmaProbe;

/// <summary>
/// Asks the kernel (iproute2's <c>rdma resource show</c>) which RDMA objects this process owns: present while
/// connected (so the check sees them at all), gone after teardown (so nothing leaked). The kernel records the
/// thread that created an object, not the process, so objects are attributed to us by the ids of our threads and by
/// the uverbs context (<c>ctxn</c>) they live in; librdmacm opens one context per device and process.
/// </summary>
internal static class KernelResources
{
    private static readonly (string Kind, string IdKey)[] Kinds =
        [("cm_id", "cm-idn"), ("pd", "pdn"), ("cq", "cqn"), ("qp", "lqpn"), ("mr", "mrn")];

    private static HashSet<(string Kind, string Device, long Id)> s_ours = [];
    private static HashSet<(string Device, long Context)> s_contexts = [];

    private sealed record KernelObject(string Kind, string Device, long Id, long? Context, int? Pid, string Comm);

    /// <summary>While connected: records our objects and insists that every kind is visible.</summary>
    public static void ExpectPresent()
    {
        var threads = OurThreads();
        var all = List();
        var ours = all.Where(o => o.Pid is { } pid && threads.Contains(pid)).ToList();
        s_contexts = ours.Where(o => o.Context != null).Select(o => (o.Device, o.Context!.Value)).ToHashSet();
        ours = all.Where(o => o.Pid is { } pid && threads.Contains(pid) || o.Context is { } c && s_contexts.Contains((o.Device, c))).ToList();
        s_ours = ours.Select(o => (o.Kind, o.Device, o.Id)).ToHashSet();
        Console.WriteLine($"kernel resources while connected: {Count(ours)} (contexts {string.Join(",", s_contexts.Select(c => $"{c.Device}/{c.Context}"))})");
        foreach (var (kind, _) in Kinds)
            if (!ours.Any(o => o.Kind == kind))
                throw new InvalidOperationException($"the kernel lists no {kind} of this process while connected, so the leak check " +
                    $"cannot see them; all objects: {string.Join("; ", all)}");
    }

    /// <summary>After teardown: none of the recorded objects, and nothing else in our contexts, may remain.</summary>
    public static void ExpectNone()
    {
        var threads = OurThreads();
        var left = List().Where(o => s_ours.Contains((o.Kind, o.Device, o.Id))
            || o.Context is { } c && s_contexts.Contains((o.Device, c))
            || o.Pid is { } pid && threads.Contains(pid)).ToList();
        Console.WriteLine($"kernel resources after teardown: {Count(left)}");
        if (left.Count > 0) throw new InvalidOperationException($"leaked RDMA objects after teardown: {string.Join("; ", left)}");
    }

    private static string Count(IReadOnlyCollection<KernelObject> objects) =>
        string.Join(" ", Kinds.Select(k => $"{k.Kind}={objects.Count(o => o.Kind == k.Kind)}"));

    private static HashSet<int> OurThreads() =>
        Directory.GetDirectories("/proc/self/task").Select(d => int.Parse(Path.GetFileName(d), CultureInfo.InvariantCulture)).ToHashSet();

    private static List<KernelObject> List()
    {
        var objects = new List<KernelObject>();
        foreach (var (kind, idKey) in Kinds)
        {
            var info = new ProcessStartInfo("rdma") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-j", "resource", "show", kind }) info.ArgumentList.Add(a);
            using var p = Process.Start(info) ?? throw new InvalidOperationException("cannot start 'rdma'");
            var output = p.StandardOutput.ReadToEnd();
            var error = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"'rdma -j resource show {kind}' failed: {error}");
            using var json = JsonDocument.Parse(string.IsNullOrWhiteSpace(output) ? "[]" : output);
            foreach (var e in json.RootElement.EnumerateArray())
            {
                if (!e.TryGetProperty("pid", out var pid) && !e.TryGetProperty("ctxn", out _)) continue; // kernel-owned
                objects.Add(new KernelObject(kind,
                    e.TryGetProperty("ifname", out var dev) ? dev.GetString() ?? "" : "",
                    e.TryGetProperty(idKey, out var id) ? id.GetInt64() : -1,
                    e.TryGetProperty("ctxn", out var ctx) ? ctx.GetInt64() : null,
                    pid.ValueKind == JsonValueKind.Number ? pid.GetInt32() : null,
                    e.TryGetProperty("comm", out var comm) ? comm.GetString() ?? "" : ""));
            }
        }
        return objects;
    }
}
