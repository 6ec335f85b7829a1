using System.Runtime.CompilerServices;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>What a burst is paused for: <see cref="OutsideBurst{T}"/> ends it before a wait and begins it after.</summary>
internal interface IBurstOwner
{
    void EndBurst();

    void BeginBurst();
}

/// <summary>
/// Awaits a value task outside the reader's burst: when the task is not complete yet, the burst ends before the wait
/// (what it held back goes out: commands to the device, replies to the client) and begins again when the wait is over,
/// whether it succeeded or threw. A task that is already complete runs on inside the burst.
/// </summary>
/// <remarks>Used as <c>await OutsideBurst.Of(owner, task)</c>. The awaiter is a struct kept in the caller's pooled
/// state machine: nothing is allocated.</remarks>
internal readonly struct OutsideBurst<T>(IBurstOwner owner, ValueTask<T> task) : ICriticalNotifyCompletion
{
    private readonly ConfiguredValueTaskAwaitable<T>.ConfiguredValueTaskAwaiter _awaiter = task.ConfigureAwait(false).GetAwaiter();

    public OutsideBurst<T> GetAwaiter() => this;

    public bool IsCompleted => _awaiter.IsCompleted;

    // The compiler calls these on a copy of the awaiter and GetResult on another: nothing is remembered in it. Only a
    // pending wait gets here, and GetResult of a pending wait always follows, so the burst is begun again exactly once.
    public void OnCompleted(Action continuation)
    {
        owner.EndBurst();
        _awaiter.OnCompleted(continuation);
    }

    public void UnsafeOnCompleted(Action continuation)
    {
        owner.EndBurst();
        _awaiter.UnsafeOnCompleted(continuation);
    }

    public T GetResult()
    {
        // Whether or not the burst was paused: BeginBurst is idempotent for an open burst.
        try
        {
            return _awaiter.GetResult();
        }
        finally
        {
            owner.BeginBurst();
        }
    }
}

/// <summary>Creates <see cref="OutsideBurst{T}"/>.</summary>
internal static class OutsideBurst
{
    public static OutsideBurst<T> Of<T>(IBurstOwner owner, ValueTask<T> task) => new(owner, task);

    public static OutsideBurst<bool> Of(IBurstOwner owner, ValueTask task) => new(owner, Completed(task));

    private static ValueTask<bool> Completed(ValueTask task)
    {
        if (task.IsCompletedSuccessfully)
        {
            task.GetAwaiter().GetResult();
            return new ValueTask<bool>(true);
        }
        return AwaitAsync(task);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<bool> AwaitAsync(ValueTask task)
    {
        await task.ConfigureAwait(false);
        return true;
    }
}
