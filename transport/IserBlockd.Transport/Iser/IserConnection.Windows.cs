using IserBlockd.Iscsi;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Transport.Iser;

/// <summary>
/// Remote access scoped to one command (as the kernel's ib_iser achieves with fast registration): a type 2 memory
/// window per command in flight, bound over the task buffer by a bind work request chained right before the SCSI
/// Command's Send (same queue pair, so the target sees the key only after the bind), granting remote write for a READ
/// and remote read for a WRITE, with a fresh key each time. When the command ends the window is invalidated before
/// anyone may reuse the buffer: the target's Send with Invalidate of exactly that key does it with the response;
/// otherwise a local invalidate is posted when the response arrives, and the response is handed to the core (which
/// then answers the client and returns the buffer) only once that invalidate has completed. An aborted or reset
/// command's window is invalidated when the core releases the task.
/// </summary>
public sealed partial class IserConnection
{
    private readonly ICommandWindows? _windows;
    // Under _gate.
    private readonly int[] _freeWindows;
    private int _freeWindowCount;
    private readonly Dictionary<uint, int> _windowOfTask;
    private readonly int[] _windowHeldReceive;
    private readonly bool[] _receiveHeld;
    private readonly int[] _sendBind;
    private long _windowBinds;
    private long _remoteInvalidations;
    private long _localInvalidations;

    /// <summary>True when remote access goes through a memory window per command.</summary>
    public bool UsesWindows => _windows != null;

    /// <summary>Windows bound for commands.</summary>
    public long WindowBinds => Interlocked.Read(ref _windowBinds);

    /// <summary>Windows the target invalidated itself with its SCSI Response (Send with Invalidate).</summary>
    public long RemoteInvalidations => Interlocked.Read(ref _remoteInvalidations);

    /// <summary>Windows invalidated by a local invalidate work request.</summary>
    public long LocalInvalidations => Interlocked.Read(ref _localInvalidations);

    /// <summary>The window key advertised for a command in flight (tests and diagnostics); null when it has none.</summary>
    internal uint? WindowKeyOf(uint itt)
    {
        lock (_gate) return _windowOfTask.TryGetValue(itt, out var window) ? _windows!.KeyOf(window) : null;
    }

    internal int FreeWindows
    {
        get { lock (_gate) return _freeWindowCount; }
    }

    private unsafe void InitializeWindows(int count)
    {
        var binds = _region.WindowBindRequests;
        var invalidates = _region.WindowInvalidateRequests;
        for (var i = 0; i < count; i++)
        {
            // Binds are unsignaled (their Send's completion retires them); only a failed or flushed one completes.
            binds[i].WorkRequestId = WorkRequests.Add(new BindCompletion(this));
            binds[i].SendFlags = IbvSendFlags.None;
            invalidates[i].WorkRequestId = WorkRequests.Add(new InvalidateCompletion(this, i));
            _freeWindows[i] = count - 1 - i;
        }
        _freeWindowCount = count;
    }

    /// <summary>Takes a free window for command <paramref name="itt"/> (caller holds _gate and checked one is free).</summary>
    private int TakeWindowLocked(uint itt)
    {
        var window = _freeWindows[--_freeWindowCount];
        _windowOfTask[itt] = window;
        return window;
    }

    /// <summary>The window command <paramref name="itt"/> still holds, now to be invalidated (caller holds _gate); -1 if none.</summary>
    private int ReleaseWindowLocked(uint itt) =>
        _windowOfTask.Count > 0 && _windowOfTask.Remove(itt, out var window) ? window : -1;

    /// <summary>Prepares the bind of <paramref name="window"/> over the task buffer, to precede send descriptor <paramref name="sendIndex"/>.</summary>
    private unsafe RdmaSegment BindWindow(int window, int sendIndex, in ScsiTaskData task, in TaskPlacement placement)
    {
        var segment = placement.Segment;
        if (placement.Region == IntPtr.Zero)
            throw new InvalidOperationException($"ITT 0x{task.InitiatorTaskTag:x8}: the task buffer's registration is unknown; no window can be bound over it");
        var access = IbvAccessFlags.None;
        if (task.ReadLength > 0) access |= IbvAccessFlags.RemoteWrite;
        if (task.WriteLength > task.UnsolicitedLength) access |= IbvAccessFlags.RemoteRead;
        var key = _windows!.PrepareBind(window, &_region.WindowBindRequests[window], placement.Region, segment.Address, segment.Length, access);
        _sendBind[sendIndex] = window;
        Interlocked.Increment(ref _windowBinds);
        return segment with { RemoteKey = key };
    }

    /// <summary>
    /// A SCSI Response arrived for a command with a window (event loop thread, caller holds _gate): true when the
    /// window still has to be invalidated locally before the response may be handed over.
    /// </summary>
    private bool SettleWindowLocked(uint itt, int receiveIndex, in IbvWc completion, out int window)
    {
        window = ReleaseWindowLocked(itt);
        if (window < 0) return false;
        if ((completion.Flags & IbvWcFlags.WithInvalidate) != 0 && completion.InvalidatedRemoteKey == _windows!.KeyOf(window))
        {
            _freeWindows[_freeWindowCount++] = window;
            _remoteInvalidations++;
            WakeSenders();
            window = -1;
            return false;
        }
        _receiveHeld[receiveIndex] = true;
        _windowHeldReceive[window] = receiveIndex;
        return true;
    }

    /// <summary>Posts the local invalidate of <paramref name="window"/> (signaled: its completion frees the window).</summary>
    private unsafe void PostInvalidate(int window)
    {
        lock (_gate)
        {
            // A failed connection's queue pair is in the error state: nothing reaches the window any more.
            if (_failure != null || !EnterRegion()) return;
            _inflightSends++;
        }
        int rc;
        try
        {
            var request = &_region.WindowInvalidateRequests[window];
            _windows!.PrepareLocalInvalidate(window, request);
            request->SendFlags = IbvSendFlags.Signaled;
            request->Next = null;
            rc = _wire.PostSend(request);
        }
        finally
        {
            ExitRegion();
        }
        if (rc == 0)
        {
            Interlocked.Increment(ref _localInvalidations);
            return;
        }
        lock (_gate)
        {
            _inflightSends--;
            CheckDrained();
        }
        Fail(new IscsiTransportException($"posting a memory window invalidate failed: {Errno.Describe(rc)} (the connection is gone)"));
    }

    /// <summary>A local invalidate completed (event loop thread): the window is free, a response held for it is released.</summary>
    private void OnInvalidateCompleted(int window, in IbvWc completion)
    {
        var ok = completion.Status == IbvWcStatus.Success;
        lock (_gate)
        {
            _inflightSends--;
            var held = _windowHeldReceive[window];
            if (held >= 0)
            {
                _windowHeldReceive[window] = -1;
                _receiveHeld[held] = false;
                _receiveWaiter.TryWake();
            }
            if (ok)
            {
                _freeWindows[_freeWindowCount++] = window;
                WakeSenders();
            }
            CheckDrained();
        }
        if (!ok)
            Fail(new IscsiTransportException(completion.Status == IbvWcStatus.WorkRequestFlushError
                ? "the RDMA connection closed (a memory window invalidate flushed)"
                : $"invalidating a memory window failed: {WorkCompletionException.Describe(completion.Status)}"));
    }

    /// <summary>A bind completed with an error (binds are unsignaled): the connection cannot scope access any more.</summary>
    private void OnBindCompleted(in IbvWc completion)
    {
        if (completion.Status == IbvWcStatus.Success) return;
        Fail(new IscsiTransportException(completion.Status == IbvWcStatus.WorkRequestFlushError
            ? "the RDMA connection closed (a memory window bind flushed)"
            : $"binding a memory window failed: {WorkCompletionException.Describe(completion.Status)}"));
    }

    private sealed class BindCompletion(IserConnection connection) : IWorkCompletionHandler
    {
        public void OnWorkCompletion(in IbvWc completion) => connection.OnBindCompleted(completion);
    }

    private sealed class InvalidateCompletion(IserConnection connection, int window) : IWorkCompletionHandler
    {
        public void OnWorkCompletion(in IbvWc completion) => connection.OnInvalidateCompleted(window, completion);
    }
}
