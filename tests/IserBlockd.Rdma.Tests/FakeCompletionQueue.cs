using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma.Tests;

/// <summary>
/// A scripted completion queue: completions are queued by the test; every call is logged so the tests can check
/// the drain/re-arm order. <see cref="BeforeArm"/> lets a test make a completion land in the window between the
/// last empty poll and the re-arm (the race that loses notifications).
/// </summary>
internal sealed class FakeCompletionQueue(int notificationFd = -1) : ICompletionQueue
{
    private readonly Queue<IbvWc> _pending = new();

    public List<string> Calls { get; } = [];
    public bool LogCalls { get; set; } = true;
    public Action? BeforeArm { get; set; }
    public int Armed { get; private set; }
    public int EventsConsumed { get; private set; }
    public Func<int>? OnConsumeEvents { get; set; }

    public int NotificationFd { get; } = notificationFd;

    public void Add(ulong wrId, IbvWcStatus status = IbvWcStatus.Success, IbvWcOpcode opcode = IbvWcOpcode.Send, uint byteLength = 0)
    {
        lock (_pending) _pending.Enqueue(new IbvWc { WorkRequestId = wrId, Status = status, Opcode = opcode, ByteLength = byteLength });
    }

    public Exception? PollFailure { get; set; }

    public int Poll(Span<IbvWc> completions)
    {
        if (PollFailure != null) throw PollFailure;
        var n = 0;
        lock (_pending)
            while (n < completions.Length && _pending.TryDequeue(out var wc)) completions[n++] = wc;
        if (LogCalls) Calls.Add($"poll({completions.Length})={n}");
        return n;
    }

    public void RequestNotification(bool solicitedOnly = false)
    {
        BeforeArm?.Invoke();
        BeforeArm = null;
        Armed++;
        if (LogCalls) Calls.Add("arm");
    }

    public int ConsumeEvents()
    {
        var n = OnConsumeEvents?.Invoke() ?? 0;
        EventsConsumed += n;
        return n;
    }
}

/// <summary>Records the completions it receives.</summary>
internal sealed class RecordingHandler : IWorkCompletionHandler
{
    public List<IbvWc> Completions { get; } = [];
    public Action<IbvWc>? OnCompletion { get; set; }

    public void OnWorkCompletion(in IbvWc completion)
    {
        lock (Completions) Completions.Add(completion);
        OnCompletion?.Invoke(completion);
    }
}

/// <summary>Counts completions without allocating (for the zero-allocation test).</summary>
internal sealed class CountingHandler : IWorkCompletionHandler
{
    public long Count;
    public void OnWorkCompletion(in IbvWc completion) => Count++;
}
