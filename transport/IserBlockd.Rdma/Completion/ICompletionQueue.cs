using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma.Completion;

/// <summary>
/// What a <see cref="CompletionDispatcher"/> needs from a completion queue. <see cref="CompletionQueue"/> is the
/// real one; tests use a scripted fake.
/// </summary>
public interface ICompletionQueue
{
    /// <summary>The descriptor that becomes readable after an armed queue receives a completion.</summary>
    int NotificationFd { get; }

    /// <summary>Writes up to <c>completions.Length</c> completions; returns the count (fewer means the queue is empty).</summary>
    int Poll(Span<IbvWc> completions);

    /// <summary>Arms the queue for the next completion.</summary>
    void RequestNotification(bool solicitedOnly = false);

    /// <summary>Reads and acknowledges the pending notification events; returns how many there were.</summary>
    int ConsumeEvents();
}
