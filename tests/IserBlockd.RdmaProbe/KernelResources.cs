using System.Diagnostics;
using System.Text.Json;

namespace IserBlockd.RdmaProbe;

/// <summary>
/// Asks the kernel (iproute2's <c>rdma resource show</c>) which RDMA objects this process owns: present while
/// connected (so the check sees them at all), gone after teardown (so nothing leaked).
/// </summary>
internal static class KernelResources
{
    private static readonly string[] Kinds = ["cm_id", "pd", "cq", "qp", "mr"];

    public static Dictionary<string, int> CountOwn()
    {
        var pid = Environment.ProcessId;
        var counts = new Dictionary<string, int>();
        foreach (var kind in Kinds)
        {
            var info = new ProcessStartInfo("rdma") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-j", "resource", "show", kind }) info.ArgumentList.Add(a);
            using var p = Process.Start(info) ?? throw new InvalidOperationException("cannot start 'rdma'");
            var output = p.StandardOutput.ReadToEnd();
            var error = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"'rdma -j resource show {kind}' failed: {error}");
            using var json = JsonDocument.Parse(string.IsNullOrWhiteSpace(output) ? "[]" : output);
            counts[kind] = json.RootElement.EnumerateArray()
                .Count(e => e.TryGetProperty("pid", out var p2) && p2.ValueKind == JsonValueKind.Number && p2.GetInt32() == pid);
        }
        return counts;
    }

    public static void ExpectPresent()
    {
        var counts = CountOwn();
        Console.WriteLine($"kernel resources while connected: {Format(counts)}");
        foreach (var kind in new[] { "pd", "cq", "qp", "mr" })
            if (counts[kind] == 0) throw new InvalidOperationException($"the kernel lists no {kind} for this process while connected: the leak check cannot see them");
    }

    public static void ExpectNone()
    {
        var counts = CountOwn();
        Console.WriteLine($"kernel resources after teardown: {Format(counts)}");
        var left = counts.Where(c => c.Value != 0).ToList();
        if (left.Count > 0) throw new InvalidOperationException($"leaked RDMA objects after teardown: {Format(left.ToDictionary())}");
    }

    private static string Format(IReadOnlyDictionary<string, int> counts) => string.Join(" ", counts.Select(c => $"{c.Key}={c.Value}"));
}
