using IserBlockd.Primitives.Async;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// A reusable, allocation-free wake-up for one waiting loop. <see cref="Set"/> must be called at most
/// once per wait (callers guard that with their own state; a second one throws), and runs the waiter's
/// continuation inline, so a signalled loop continues on the signalling thread without a thread-pool hop.
/// A <see cref="Set"/> before the wait completes the next <see cref="WaitAsync"/> at once.
/// </summary>
internal sealed class LoopWakeSignal
{
    // Reset as the waiter takes the wake-up: ready for the next wait before the waiter runs on.
    private readonly ResettableCompletionSource<bool> _completion = new(runContinuationsAsynchronously: false, resetWhenConsumed: true);

    public ValueTask WaitAsync() => _completion.WaitCompletionAsync();

    public void Set() => _completion.SetResult(true);
}
