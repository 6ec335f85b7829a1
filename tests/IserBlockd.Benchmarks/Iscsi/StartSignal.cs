using IserBlockd.Primitives.Async;

namespace IserBlockd.Benchmarks.Iscsi;

/// <summary>
/// A reusable, allocation-free go/stop signal for one waiting loop of <see cref="BlockIoDriver"/>. The loop continues
/// inline in <see cref="Set"/> (on the thread that starts the run) until its first I/O has to wait.
/// </summary>
internal sealed class StartSignal
{
    private readonly ResettableCompletionSource<bool> _completion = new(runContinuationsAsynchronously: false, resetWhenConsumed: true);

    public ValueTask<bool> WaitAsync() => _completion.WaitAsync();

    /// <summary>Releases the waiting loop: to run (true) or to end (false). Once per wait.</summary>
    public void Set(bool run) => _completion.SetResult(run);
}
