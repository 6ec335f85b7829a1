using IserBlockd.Primitives.Async;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// An auto-reset event for a single waiter (the connection's writer loop), allocation-free: producers call
/// <see cref="Set"/>, the writer awaits <see cref="WaitAsync"/>.
/// </summary>
/// <remarks>
/// A <see cref="Set"/> that finds the writer waiting runs it inline, on the producer's thread, until it has sent
/// everything queued or a send has to wait: a command goes to the wire from the thread that issued it (an NBD loop,
/// or the receive loop completing the previous command), as the kernel's initiators do, with no wake-up of another
/// thread in between. That is safe because the writer never blocks (a transport that must wait returns a pending
/// task, and the writer continues wherever that completes) and because producers call <see cref="Set"/> outside the
/// session lock. A <see cref="Set"/> from the writer itself, or while it runs elsewhere, only leaves the signal set.
/// </remarks>
internal sealed class AsyncSignal
{
    // Inline continuations: the writer runs on the producer's thread (see above).
    private readonly ResettableCompletionSource<bool> _completion = new(runContinuationsAsynchronously: false);
    private readonly object _gate = new();
    private bool _signaled;
    private bool _waiting;

    public ValueTask WaitAsync()
    {
        lock (_gate)
        {
            if (_signaled)
            {
                _signaled = false;
                return default;
            }
            _waiting = true;
            _completion.Reset();
            return _completion.WaitCompletionAsync();
        }
    }

    public void Set()
    {
        lock (_gate)
        {
            if (!_waiting)
            {
                _signaled = true;
                return;
            }
            _waiting = false;
        }
        _completion.SetResult(true);
    }
}
