using System.Threading.Tasks.Sources;

namespace IserBlockd.Transport.Iser;

/// <summary>
/// A reusable wait for one waiter at a time (the connection's single sender, or its single receiver), woken from
/// the completion thread. The waiter arms it under the owner's lock after finding nothing to do; whoever changes
/// the state under the same lock calls <see cref="TryWake"/>, which completes only an armed wait, so no wake-up is
/// lost and none is doubled. Continuations run on the thread pool, never on the RDMA event loop thread.
/// </summary>
internal sealed class SingleWaiter : IValueTaskSource
{
    private static readonly Action<object?, CancellationToken> CancelCallback = static (state, token) =>
        ((SingleWaiter)state!).TryCancel(token);

    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private readonly object _gate;
    private bool _armed;
    private CancellationTokenRegistration _registration;

    /// <param name="gate">The owner's lock, held by callers of <see cref="Arm"/> and <see cref="TryWake"/>.</param>
    public SingleWaiter(object gate) => _gate = gate;

    /// <summary>Prepares a wait (caller holds the owner's lock and has found nothing to do).</summary>
    public void Arm()
    {
        if (_armed) throw new InvalidOperationException("Only one waiter at a time.");
        _core.Reset();
        _armed = true;
    }

    /// <summary>Wakes an armed waiter (caller holds the owner's lock). False when nobody waits.</summary>
    public bool TryWake()
    {
        if (!_armed) return false;
        _armed = false;
        _core.SetResult(true);
        return true;
    }

    /// <summary>Waits after <see cref="Arm"/> (outside the lock). Cancellation ends the wait with <see cref="OperationCanceledException"/>.</summary>
    public ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled)
            _registration = cancellationToken.UnsafeRegister(CancelCallback, this);
        return new ValueTask(this, _core.Version);
    }

    private void TryCancel(CancellationToken token)
    {
        lock (_gate)
        {
            if (!_armed) return;
            _armed = false;
            _core.SetException(new OperationCanceledException(token));
        }
    }

    void IValueTaskSource.GetResult(short token)
    {
        _registration.Dispose();
        _registration = default;
        _core.GetResult(token);
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
