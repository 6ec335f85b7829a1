namespace IserBlockd.Benchmarks.Iscsi;

/// <summary>
/// The exact figure behind the benchmark's Allocated column: BenchmarkDotNet divides the process's allocated bytes by
/// the operation count and rounds, so a few hundred bytes of runtime background work (a thread pool thread coming or
/// going) vanish in it, and so would a small per-I/O leak. This calls the same benchmark methods a fixed number of
/// times after a warm-up and prints the process-wide allocated bytes (all threads) of the measured calls, unrounded.
/// Run: dotnet run -c Release --project tests/IserBlockd.Benchmarks -- --count-iscsi-allocations
/// </summary>
internal static class IscsiAllocationCount
{
    private const int WarmupInvocations = 2000;
    private const int MeasuredInvocations = 8000;

    /// <remarks>
    /// Synchronous on purpose, as BenchmarkDotNet's engine is: after an await of block I/O the code continues on the
    /// session's receive loop, where the benchmark methods (which wait for their I/Os) would block the loop for good.
    /// </remarks>
    public static void Run(TextWriter output)
    {
        foreach (var queueDepth in new[] { 1, 32 })
        {
            var benchmarks = new IscsiBlockIoBenchmarks { QueueDepth = queueDepth };
            benchmarks.Setup().GetAwaiter().GetResult();
            try
            {
                Count(output, "4 KiB READ ", queueDepth, benchmarks.Read4K);
                Count(output, "4 KiB WRITE", queueDepth, benchmarks.Write4K);
            }
            finally
            {
                benchmarks.Cleanup().GetAwaiter().GetResult();
            }
        }
    }

    private static void Count(TextWriter output, string name, int queueDepth, Action invoke)
    {
        for (var i = 0; i < WarmupInvocations; i++) invoke();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < MeasuredInvocations; i++) invoke();
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        var ios = (long)MeasuredInvocations * IscsiBlockIoBenchmarks.IosPerInvoke;
        output.WriteLine($"{name} queue depth {queueDepth,2}: {allocated} bytes allocated over {ios} I/Os ({(double)allocated / ios:F4} per I/O)");
    }
}
