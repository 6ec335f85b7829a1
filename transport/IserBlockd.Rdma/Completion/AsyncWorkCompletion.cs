using IserBlockd.Primitives.Async;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma.Completion;

/// <summary>
/// A reusable awaitable for one outstanding work request at a time: register it once in a
/// <see cref="WorkRequestTable"/>, then for each post call <see cref="Reset"/>, post with <see cref="WorkRequestId"/>
/// and await <see cref="WaitAsync"/>. Continuations run on the thread pool, never on the event loop thread.
/// </summary>
public sealed class AsyncWorkCompletion : IWorkCompletionHandler
{
    private readonly ResettableCompletionSource<IbvWc> _completion = new(runContinuationsAsynchronously: true);

    /// <summary>The id to post work requests with (set by <see cref="Register"/>).</summary>
    public ulong WorkRequestId { get; private set; }

    /// <summary>Registers this awaitable in <paramref name="table"/>.</summary>
    public AsyncWorkCompletion Register(WorkRequestTable table)
    {
        WorkRequestId = table.Add(this);
        return this;
    }

    /// <summary>Prepares for the next work request (call before posting it).</summary>
    public void Reset() => _completion.Reset();

    /// <summary>Completes when the work request completes, successfully or not (check <see cref="IbvWc.Status"/>).</summary>
    public ValueTask<IbvWc> WaitAsync() => _completion.WaitAsync();

    void IWorkCompletionHandler.OnWorkCompletion(in IbvWc completion) => _completion.SetResult(completion);
}
