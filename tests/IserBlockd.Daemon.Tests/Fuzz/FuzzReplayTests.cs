using IserBlockd.Fuzz;

namespace IserBlockd.Daemon.Tests.Fuzz;

/// <summary>
/// Every fuzzing harness (tests/fuzz) run without AFL over its seeds and over each input kept in
/// tests/fuzz/regressions/TARGET: the crashes and hangs the fuzzer found must stay fixed, and the harnesses must
/// accept their own seeds (afl-fuzz refuses to start otherwise).
/// </summary>
public sealed class FuzzReplayTests
{
    public static TheoryData<string> Targets() => new(FuzzTargets.All.Select(t => t.Name));

    [Theory]
    [MemberData(nameof(Targets))]
    public void Seeds_and_kept_findings_run_clean(string name)
    {
        var target = FuzzTargets.Find(name)!;
        var inputs = target.Seeds().ToList();
        Assert.NotEmpty(inputs);
        var kept = Path.Combine(AppContext.BaseDirectory, "fuzz-regressions", name);
        if (Directory.Exists(kept))
            inputs.AddRange(Directory.GetFiles(kept).Select(f => (Path.GetFileName(f), File.ReadAllBytes(f))));
        foreach (var (input, data) in inputs)
        {
            var e = Record.Exception(() => target.Run(data));
            Assert.True(e == null, $"{name}/{input}: {e}");
        }
    }

    [Fact]
    public void Every_kept_finding_belongs_to_a_target()
    {
        var root = Path.Combine(AppContext.BaseDirectory, "fuzz-regressions");
        Assert.True(Directory.Exists(root));
        foreach (var directory in Directory.GetDirectories(root))
            Assert.NotNull(FuzzTargets.Find(Path.GetFileName(directory)));
    }
}
