using IserBlockd.Rdma;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Transport.Iser;

/// <summary>
/// Remote access scoped to one command (as the kernel's ib_iser achieves with fast registration): the type 2 memory
/// windows of one connection, one per command in flight, bound over the task buffer by a bind work request chained
/// right before the SCSI Command's Send (same queue pair, so the target sees the key only after the bind), granting
/// remote write for a READ and remote read for a WRITE, with a fresh key each time. When the command ends the window is
/// invalidated before anyone may reuse the buffer: the target's Send with Invalidate of exactly that key does it with
/// the response; otherwise the connection posts a local invalidate when the response arrives, and the response is
/// held back (<see cref="IsReceiveHeld"/>) until that invalidate has completed. An aborted or reset command's window
/// is invalidated when the core releases the task.
/// </summary>
/// <remarks>Which window serves which command, which response waits for which invalidate, and which send carries which
/// bind: state of the connection's, so every member but <see cref="PrepareInvalidate"/> and the counters is called
/// with the connection's lock held. The connection posts the work requests.</remarks>
internal sealed unsafe class CommandWindowBinder : IDisposable
{
    private readonly ICommandWindows _windows;
    private readonly IbvSendWr* _bindRequests;
    private readonly IbvSendWr* _invalidateRequests;
    private readonly int[] _free;
    private int _freeCount;
    private readonly Dictionary<uint, int> _windowOfTask;
    /// <summary>Per window: the receive buffer (a SCSI Response) held until its invalidate completes; -1 if none.</summary>
    private readonly int[] _heldReceive;
    private readonly bool[] _receiveHeld;
    /// <summary>Per send descriptor: the window whose bind goes out right before it; -1 if none.</summary>
    private readonly int[] _sendBind;
    private long _bindCount;
    private long _remoteInvalidations;
    private long _localInvalidations;

    /// <param name="bindCompletion">Completes a bind (they are unsignaled: only a failed or flushed one completes).</param>
    /// <param name="invalidateCompletion">Completes the local invalidate of a window.</param>
    public CommandWindowBinder(ICommandWindows windows, DescriptorRegion region, int receives, int sends, WorkRequestTable workRequests,
        IWorkCompletionHandler bindCompletion, Func<int, IWorkCompletionHandler> invalidateCompletion)
    {
        _windows = windows;
        _bindRequests = region.WindowBindRequests;
        _invalidateRequests = region.WindowInvalidateRequests;
        var count = windows.Count;
        _free = new int[count];
        _heldReceive = new int[count];
        Array.Fill(_heldReceive, -1);
        _windowOfTask = new Dictionary<uint, int>(count);
        _receiveHeld = new bool[receives];
        _sendBind = new int[sends];
        Array.Fill(_sendBind, -1);
        for (var i = 0; i < count; i++)
        {
            _bindRequests[i].WorkRequestId = workRequests.Add(bindCompletion);
            _bindRequests[i].SendFlags = IbvSendFlags.None;
            _invalidateRequests[i].WorkRequestId = workRequests.Add(invalidateCompletion(i));
            _free[i] = count - 1 - i;
        }
        _freeCount = count;
    }

    public int Count => _windows.Count;

    public int FreeCount => _freeCount;

    public long Binds => Interlocked.Read(ref _bindCount);

    public long RemoteInvalidations => Interlocked.Read(ref _remoteInvalidations);

    public long LocalInvalidations => Interlocked.Read(ref _localInvalidations);

    /// <summary>The key advertised for command <paramref name="itt"/>; null when it holds no window.</summary>
    public uint? KeyOf(uint itt) => _windowOfTask.TryGetValue(itt, out var window) ? _windows.KeyOf(window) : null;

    /// <summary>Takes a free window for command <paramref name="itt"/> (the caller checked <see cref="FreeCount"/>).</summary>
    public int Take(uint itt)
    {
        var window = _free[--_freeCount];
        _windowOfTask[itt] = window;
        return window;
    }

    /// <summary>The window command <paramref name="itt"/> still holds, now to be invalidated; -1 if none.</summary>
    public int Release(uint itt) => _windowOfTask.Count > 0 && _windowOfTask.Remove(itt, out var window) ? window : -1;

    /// <summary>Prepares the bind of <paramref name="window"/> over <paramref name="segment"/> (registration
    /// <paramref name="region"/>), to go out before send descriptor <paramref name="sendIndex"/>; returns the segment
    /// with the window's new key.</summary>
    public RdmaSegment Bind(int window, int sendIndex, RdmaSegment segment, IntPtr region, IbvAccessFlags access)
    {
        var key = _windows.PrepareBind(window, &_bindRequests[window], region, segment.Address, segment.Length, access);
        _sendBind[sendIndex] = window;
        Interlocked.Increment(ref _bindCount);
        return segment with { RemoteKey = key };
    }

    /// <summary>The bind to post right before send descriptor <paramref name="sendIndex"/> (taken: once); null if none.</summary>
    public IbvSendWr* TakeBindBefore(int sendIndex)
    {
        var window = _sendBind[sendIndex];
        if (window < 0) return null;
        _sendBind[sendIndex] = -1;
        return &_bindRequests[window];
    }

    /// <summary>
    /// The SCSI Response of command <paramref name="itt"/> arrived in receive buffer <paramref name="receiveIndex"/>:
    /// true when its window must still be invalidated locally (<paramref name="window"/>; the response is held until
    /// then); false when it held none, or the target invalidated it itself (<paramref name="freed"/>: senders may go on).
    /// </summary>
    public bool Settle(uint itt, int receiveIndex, in IbvWc completion, out int window, out bool freed)
    {
        freed = false;
        window = Release(itt);
        if (window < 0) return false;
        if ((completion.Flags & IbvWcFlags.WithInvalidate) != 0 && completion.InvalidatedRemoteKey == _windows.KeyOf(window))
        {
            _free[_freeCount++] = window;
            _remoteInvalidations++;
            window = -1;
            freed = true;
            return false;
        }
        _receiveHeld[receiveIndex] = true;
        _heldReceive[window] = receiveIndex;
        return true;
    }

    /// <summary>A response waiting for its window's invalidate: the receiver must not take it yet.</summary>
    public bool IsReceiveHeld(int receiveIndex) => _receiveHeld[receiveIndex];

    /// <summary>Fills the (signaled, unchained) local invalidate of <paramref name="window"/>; no lock needed.</summary>
    public IbvSendWr* PrepareInvalidate(int window)
    {
        var request = &_invalidateRequests[window];
        _windows.PrepareLocalInvalidate(window, request);
        request->SendFlags = IbvSendFlags.Signaled;
        request->Next = null;
        return request;
    }

    public void CountLocalInvalidation() => Interlocked.Increment(ref _localInvalidations);

    /// <summary>The local invalidate of <paramref name="window"/> completed: the response it held (returned; -1 if
    /// none) may go to the receiver, and the window is free again when it succeeded.</summary>
    public int Invalidated(int window, bool succeeded)
    {
        var held = _heldReceive[window];
        if (held >= 0)
        {
            _heldReceive[window] = -1;
            _receiveHeld[held] = false;
        }
        if (succeeded) _free[_freeCount++] = window;
        return held;
    }

    /// <summary>Frees the windows (after the queue pair is destroyed).</summary>
    public void Dispose() => _windows.Dispose();
}
