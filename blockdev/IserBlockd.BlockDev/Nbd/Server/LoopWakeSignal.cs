using System.Threading.Tasks.Sources;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// A reusable, allocation-free wake-up for one waiting loop. <see cref="Set"/> must be called at most
/// once per wait (callers guard that with their own state), and runs the waiter's continuation inline,
/// so a signalled loop continues on the signalling thread without a thread-pool hop.
/// </summary>
internal sealed class LoopWakeSignal : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core; // mutable struct: never make this readonly

    public ValueTask WaitAsync() => new(this, _core.Version);

    public void Set() => _core.SetResult(true);

    void IValueTaskSource.GetResult(short token)
    {
        _core.GetResult(token);
        _core.Reset(); // ready for the next wait before the waiter runs on
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
