using System.Threading.Tasks.Sources;

namespace IserBlockd.Primitives.Async;

/// <summary>
/// A completion source for one waiter at a time that is reused instead of reallocated: awaitable as
/// <see cref="ValueTask{TResult}"/> (<see cref="WaitAsync"/>) or <see cref="ValueTask"/>
/// (<see cref="WaitCompletionAsync"/>) without allocating, built on <see cref="ManualResetValueTaskSourceCore{TResult}"/>.
/// </summary>
/// <remarks>
/// <para>Contract. Each use is one <em>version</em>: at most one wait, and the first of <c>TrySetResult</c>,
/// <c>TrySetException</c> or <c>TrySetCanceled</c> wins (the others return false; the <c>Set*</c> forms throw
/// <see cref="InvalidOperationException"/> instead). <see cref="Reset"/> starts the next version; call it only when
/// the previous one's waiter has taken its result (or there never was one) — by hand, or automatically when the
/// waiter takes it (<c>resetWhenConsumed</c>). A <see cref="ValueTask"/> of an older version is stale: awaiting it
/// throws <see cref="InvalidOperationException"/>.</para>
/// <para>Continuations. <c>runContinuationsAsynchronously</c> is a choice each owner makes explicitly: false runs the
/// waiter on the completing thread, inside <c>TrySet*</c> (no thread hop: what per-I/O paths want, when the waiter
/// never blocks and the completer holds no lock); true queues it to the thread pool (when the completer is a thread
/// that must not run arbitrary code, such as an RDMA event loop).</para>
/// <para>Cancellation. A wait given a cancelable token ends with <see cref="OperationCanceledException"/> if the token
/// fires before a result is set; a result set first wins, and the cancellation then does nothing. The registration
/// is released when the waiter takes its result. Derived types (a pooled object that is its own awaitable) can act
/// after the result is taken by overriding <see cref="OnConsumed"/>.</para>
/// </remarks>
public class ResettableCompletionSource<T> : IValueTaskSource<T>, IValueTaskSource
{
    private static readonly Action<object?, CancellationToken> CancelCallback = static (state, token) =>
        ((ResettableCompletionSource<T>)state!).TrySetCanceled(token);

    private ManualResetValueTaskSourceCore<T> _core; // mutable struct: never make this readonly
    private readonly bool _resetWhenConsumed;
    private int _completed; // 1 once a TrySet* of this version won
    private CancellationTokenRegistration _registration;

    /// <param name="runContinuationsAsynchronously">True: the waiter continues on the thread pool. False: it continues
    /// inline on the thread that completes this source.</param>
    /// <param name="resetWhenConsumed">True: the next version starts as soon as the waiter has taken its result, so a
    /// completion may come before the next wait (an auto-reset wake-up). False: the owner calls <see cref="Reset"/>.</param>
    public ResettableCompletionSource(bool runContinuationsAsynchronously, bool resetWhenConsumed = false)
    {
        _core.RunContinuationsAsynchronously = runContinuationsAsynchronously;
        _resetWhenConsumed = resetWhenConsumed;
    }

    /// <summary>The current version (the token of the <see cref="ValueTask"/>s handed out now).</summary>
    public short Version => _core.Version;

    /// <summary>Whether this version has been completed (by a result, an exception or a cancellation).</summary>
    public bool IsCompleted => Volatile.Read(ref _completed) != 0;

    /// <summary>Starts the next version. Only when the previous version's waiter has taken its result, or never waited.</summary>
    public void Reset()
    {
        _registration.Dispose();
        _registration = default;
        _core.Reset();
        Volatile.Write(ref _completed, 0);
    }

    /// <summary>Waits for this version's result. A cancelable token ends the wait with <see cref="OperationCanceledException"/>.</summary>
    public ValueTask<T> WaitAsync(CancellationToken cancellationToken = default)
    {
        var version = _core.Version;
        RegisterCancellation(cancellationToken);
        return new ValueTask<T>(this, version);
    }

    /// <summary>As <see cref="WaitAsync"/>, for a waiter that needs only the completion, not the result.</summary>
    public ValueTask WaitCompletionAsync(CancellationToken cancellationToken = default)
    {
        var version = _core.Version;
        RegisterCancellation(cancellationToken);
        return new ValueTask(this, version);
    }

    private void RegisterCancellation(CancellationToken cancellationToken)
    {
        // A token already cancelled completes this version right here, inside UnsafeRegister.
        if (cancellationToken.CanBeCanceled && !IsCompleted)
            _registration = cancellationToken.UnsafeRegister(CancelCallback, this);
    }

    /// <summary>Completes this version with <paramref name="result"/>. False when it was already completed.</summary>
    public bool TrySetResult(T result)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0) return false;
        _core.SetResult(result);
        return true;
    }

    /// <summary>Completes this version with <paramref name="error"/>. False when it was already completed.</summary>
    public bool TrySetException(Exception error)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0) return false;
        _core.SetException(error);
        return true;
    }

    /// <summary>Completes this version with an <see cref="OperationCanceledException"/>. False when it was already completed.</summary>
    public bool TrySetCanceled(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0) return false;
        _core.SetException(new OperationCanceledException(cancellationToken));
        return true;
    }

    /// <summary>Completes this version with <paramref name="result"/>; throws if it was already completed.</summary>
    public void SetResult(T result)
    {
        if (!TrySetResult(result)) throw AlreadyCompleted();
    }

    /// <summary>Completes this version with <paramref name="error"/>; throws if it was already completed.</summary>
    public void SetException(Exception error)
    {
        if (!TrySetException(error)) throw AlreadyCompleted();
    }

    private static InvalidOperationException AlreadyCompleted() => new("This version of the completion source is already completed.");

    /// <summary>Called after the waiter has taken its result (or its exception), after any automatic reset.</summary>
    protected virtual void OnConsumed()
    {
    }

    /// <summary>The waiter takes the result: releases the cancellation registration, resets if asked, then <see cref="OnConsumed"/>.</summary>
    public T GetResult(short token)
    {
        // A stale token throws here, and so does a wait not yet completed, before anything is released.
        if (_core.GetStatus(token) == ValueTaskSourceStatus.Pending)
            throw new InvalidOperationException("This version of the completion source is not completed yet.");
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            if (_resetWhenConsumed) Reset();
            else
            {
                _registration.Dispose();
                _registration = default;
            }
            OnConsumed();
        }
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
