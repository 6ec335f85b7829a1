using System.Reflection;
using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.Integration.Tests;

/// <summary>
/// The conformance matrix's quick subset (<c>tests/interop/matrix.sh --quick</c>): fio verify through
/// <c>iserblockd export</c> against tgtd and istgt under digests, InitialR2T, ImmediateData, burst and segment
/// lengths from 512 B to 16 MiB, and 512/4096-byte blocks. The whole matrix runs without <c>--quick</c> (minutes).
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class MatrixTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Quick_matrix_passes_every_row_against_tgtd_and_istgt()
    {
        var root = typeof(MatrixTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == "RepoRoot").Value!;
        var script = Path.Combine(root, "tests", "interop", "matrix.sh");
        var result = await ExternalProcess.RunAsync("bash", [script, "--quick"], TimeSpan.FromMinutes(15),
            new Dictionary<string, string> { ["IBD_BIN"] = Executables.Iserblockd });
        output.WriteLine(result.StandardOutput);
        var lines = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 0, result.StandardError);
        var last = lines[^1];
        Assert.True(last.StartsWith("MATRIX passed=", StringComparison.Ordinal) && last.Contains(" failed=0", StringComparison.Ordinal),
            $"{last}\n{result.StandardError[^Math.Min(result.StandardError.Length, 4000)..]}");
        Assert.Equal(0, result.ExitCode);
        var passed = lines.Where(l => l.Contains("  PASS  ", StringComparison.Ordinal)).ToList();
        Assert.True(passed.Count >= 12, $"only {passed.Count} rows passed");
        Assert.Contains(passed, l => l.StartsWith("tgtd", StringComparison.Ordinal));
        Assert.Contains(passed, l => l.StartsWith("istgt", StringComparison.Ordinal));
    }
}
