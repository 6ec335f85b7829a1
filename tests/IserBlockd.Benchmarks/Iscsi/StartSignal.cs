using System.Threading.Tasks.Sources;

namespace IserBlockd.Benchmarks.Iscsi;

/// <summary>
/// A reusable, allocation-free go/stop signal for one waiting loop of <see cref="BlockIoDriver"/>. The loop continues
/// inline in <see cref="Set"/> (on the thread that starts the run) until its first I/O has to wait.
/// </summary>
internal sealed class StartSignal : IValueTaskSource<bool>
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = false };

    public ValueTask<bool> WaitAsync() => new(this, _core.Version);

    /// <summary>Releases the waiting loop: to run (true) or to end (false). Once per wait.</summary>
    public void Set(bool run) => _core.SetResult(run);

    bool IValueTaskSource<bool>.GetResult(short token)
    {
        var run = _core.GetResult(token);
        _core.Reset();
        return run;
    }

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}
