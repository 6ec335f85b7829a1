using IserBlockd.Primitives.Async;

namespace IserBlockd.Transport.Iser;

/// <summary>
/// A reusable wait for one waiter at a time (the connection's single sender, or its single receiver), woken from
/// the completion thread. The waiter arms it under the owner's lock after finding nothing to do; whoever changes
/// the state under the same lock calls <see cref="TryWake"/>, which completes only an armed wait, so no wake-up is
/// lost and none is doubled. Continuations run on the thread pool, never on the RDMA event loop thread.
/// </summary>
internal sealed class SingleWaiter
{
    private readonly ResettableCompletionSource<bool> _completion = new(runContinuationsAsynchronously: true);
    private bool _armed;

    /// <summary>Prepares a wait (caller holds the owner's lock and has found nothing to do).</summary>
    public void Arm()
    {
        // A wait that ended by cancellation stays armed until the next Arm; a live one may not be armed twice.
        if (_armed && !_completion.IsCompleted) throw new InvalidOperationException("Only one waiter at a time.");
        _completion.Reset();
        _armed = true;
    }

    /// <summary>Wakes an armed waiter (caller holds the owner's lock). False when nobody waits (or its wait was cancelled).</summary>
    public bool TryWake()
    {
        if (!_armed) return false;
        _armed = false;
        return _completion.TrySetResult(true);
    }

    /// <summary>Waits after <see cref="Arm"/> (outside the lock). Cancellation ends the wait with <see cref="OperationCanceledException"/>.</summary>
    public ValueTask WaitAsync(CancellationToken cancellationToken) => _completion.WaitCompletionAsync(cancellationToken);
}
