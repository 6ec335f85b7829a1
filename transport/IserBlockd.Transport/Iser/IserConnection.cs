using System.Net;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;
using Microsoft.Extensions.Logging;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Transport.Iser;

/// <summary>
/// One iSER connection (RFC 7145): iSCSI control PDUs travel as RDMA Sends, each behind the 28-byte iSER header; the
/// data of SCSI READs and WRITEs is moved by the target itself, by RDMA Write into and RDMA Read from the task's
/// registered buffer, whose STag/VA the SCSI Command advertises. So the core sees no Data-In, R2T or solicited
/// Data-Out (<see cref="IscsiTransportCapabilities.PlacesScsiData"/>).
/// <para>
/// Flow control (RFC 7145 §8): every receive buffer is posted before connecting and re-posted as soon as the core
/// is done with the PDU in it. A request that will be answered (command, ping, task management, text, logout) is
/// sent only while a posted receive buffer is free for its answer; <see cref="IserConnectionOptions.UnexpectedPduReserve"/>
/// more are kept for what the target sends unasked. Control requests never outnumber the target's
/// MaxOutstandingUnexpectedPDUs, and sends never outnumber the send queue. Sends are batched and posted with one
/// doorbell per flush.
/// </para>
/// <para>
/// The task buffer of a command is used in place when it lies in memory registered on this connection's protection
/// domain (the NBD side's <see cref="RegisteredBufferPool"/>): no copy anywhere. Other memory (plain arrays) goes
/// through a registered bounce buffer, counted in <see cref="BounceTransfers"/>.
/// </para>
/// <para>
/// Where the device has memory windows, the target reaches a task buffer only through a type 2 window bound over it
/// for that command on this queue pair (the bind is posted in the same chain as the SCSI Command) and invalidated when
/// the command ends: by the target's Send with Invalidate of the SCSI Response, else by a local invalidate that
/// completes before the response is handed to the core; an aborted command's window is invalidated when the core
/// releases the task (<see cref="CommandWindowBinder"/>).
/// </para>
/// <para>
/// A NOP-Out ping may be sent beside the core's writer (<see cref="IscsiTransportCapabilities.ConcurrentPing"/>): it
/// has a send descriptor and an answer buffer of its own (<see cref="IserConnectionOptions.PingReserve"/>) and waits,
/// if ever, on its own waiter.
/// </para>
/// Threading: one sender and one receiver at a time (the core's contract), completions on the RDMA event loop
/// thread; all shared state is under one lock. Steady state allocates nothing: descriptors, work requests and waits
/// are reused.
/// </summary>
public sealed partial class IserConnection : IIscsiConnection
{
    internal const int HeadersLength = IserHeader.Length + Iscsi.Pdu.BasicHeaderSegment.Length;
    private const uint ReservedTag = Iscsi.Pdu.BasicHeaderSegment.ReservedTag;

    private readonly IIserWire _wire;
    private readonly IIserTaskMemory _taskMemory;
    private readonly IserConnectionOptions _options;
    private readonly IserLoginKeys _keys;
    private readonly ILogger _logger;
    private readonly DescriptorRegion _region;
    private readonly Memory<byte> _regionMemory;
    private readonly object _gate = new();
    private readonly SingleWaiter _receiveWaiter;
    private readonly SingleWaiter _sendWaiter;
    private readonly SingleWaiter _pingWaiter;
    private readonly object _postGate = new();
    /// <summary>Per-command memory windows, where the device has them (null: the registrations' own keys are used).</summary>
    private readonly CommandWindowBinder? _windows;

    // Under _gate.
    private readonly int[] _arrivedIndex;
    private readonly int[] _arrivedLength;
    private readonly ArrivalKind[] _receiveKind;
    private int _arrivedHead;
    private int _arrivedCount;
    private readonly int[] _freeSends;
    private int _freeSendCount;
    private readonly int[] _pendingSends;
    private int _pendingSendCount;
    private int _postedReceives;
    private int _inflightSends;
    private int _receiveCredits;
    private int _controlOutstanding;
    private long _controlLimit;
    private int _current = -1;
    private int _regionUsers;
    private bool _closed;
    private bool _regionFreed;
    private IscsiException? _failure;
    private TaskCompletionSource? _drained;
    private readonly Dictionary<uint, TaskBuffer> _taskBuffers;
    // SCSI commands whose answer (SCSI Response or Reject) a posted receive buffer is reserved for.
    private readonly HashSet<uint> _answerPending;

    // The PDU the receiver holds (valid while _current >= 0).
    private int _dataOffset;
    private int _dataLength;
    private bool _dataTaken;

    private readonly object _disposeGate = new();
    private int _disposeStarted;
    private Task? _disposeTask;
    private long _bounceTransfers;
    private long _pinnedTransfers;
    private long _registeredTransfers;
    private long _sendStalls;
    private long _pdusSent;
    private long _pdusReceived;

    internal IserConnection(IIserWire wire, IMemoryRegistrar descriptorRegistrar, IIserTaskMemory taskMemory, IserConnectionOptions options, ILogger logger)
    {
        options.Validate();
        _wire = wire;
        _taskMemory = taskMemory;
        _options = options;
        _logger = logger;
        _keys = new IserLoginKeys(options.ReceiveDataSegmentLength, options.SendDataSegmentLength, options.UnexpectedPduReserve, options.MaxCommandDataLength);
        _receiveWaiter = new SingleWaiter();
        _sendWaiter = new SingleWaiter();
        _pingWaiter = new SingleWaiter();
        var receives = options.ReceiveBufferCount;
        var sends = options.SendQueueDepth;
        var commandWindows = taskMemory.CreateWindows(options.WindowCount);
        var windows = commandWindows?.Count ?? 0;
        try
        {
            _region = new DescriptorRegion(descriptorRegistrar, receives, options.ReceiveBufferSize, sends, options.SendBufferSize, windows);
        }
        catch
        {
            commandWindows?.Dispose();
            throw;
        }
        _regionMemory = _region.Memory;
        _arrivedIndex = new int[receives];
        _arrivedLength = new int[receives];
        _receiveKind = new ArrivalKind[receives];
        _freeSends = new int[sends];
        _pendingSends = new int[sends];
        _taskBuffers = new Dictionary<uint, TaskBuffer>(options.QueueDepth);
        _answerPending = new HashSet<uint>(receives);
        WorkRequests = new WorkRequestTable(receives + sends + 2 * windows);
        InitializeWorkRequests(receives, sends);
        if (commandWindows != null)
            _windows = new CommandWindowBinder(commandWindows, _region, receives, sends, WorkRequests, new BindCompletion(this), window => new InvalidateCompletion(this, window));
    }

    // Native work requests and SGEs, one per descriptor, built once and linked into chains when posted.
    private unsafe void InitializeWorkRequests(int receives, int sends)
    {
        var receiveRequests = _region.ReceiveRequests;
        var receiveSges = _region.ReceiveSges;
        var sendRequests = _region.SendRequests;
        var sendSges = _region.SendSges;
        for (var i = 0; i < receives; i++)
        {
            var offset = _region.ReceiveOffset(i);
            receiveSges[i] = new IbvSge(_region.AddressOf(offset), (uint)_region.ReceiveSize, _region.LocalKey);
            receiveRequests[i].WorkRequestId = WorkRequests.Add(new ReceiveCompletion(this, i));
            receiveRequests[i].ScatterGatherList = &receiveSges[i];
            receiveRequests[i].ScatterGatherCount = 1;
        }
        for (var i = 0; i < sends; i++)
        {
            sendRequests[i].WorkRequestId = WorkRequests.Add(new SendCompletion(this, i));
            sendRequests[i].ScatterGatherList = &sendSges[i];
            sendRequests[i].ScatterGatherCount = 1;
            sendRequests[i].Opcode = IbvWrOpcode.Send;
            sendRequests[i].SendFlags = IbvSendFlags.Signaled;
            _freeSends[i] = sends - 1 - i;
        }
        _freeSendCount = sends;
    }

    /// <summary>wr_id → descriptor: the completion dispatcher of the queue pair routes completions through it.</summary>
    internal WorkRequestTable WorkRequests { get; }

    public IscsiTransportCapabilities Capabilities => IscsiTransportCapabilities.PlacesScsiData | IscsiTransportCapabilities.ConcurrentPing;

    public ITransportLoginKeys? LoginKeys => _keys;

    /// <summary>The iSER login keys of this connection and what was agreed.</summary>
    public IserLoginKeys IserKeys => _keys;

    public EndPoint? LocalEndPoint => _wire.LocalEndPoint;

    public EndPoint? RemoteEndPoint => _wire.RemoteEndPoint;

    /// <summary>Commands whose buffer was not registered memory and went through a bounce buffer (a copy each way).</summary>
    public long BounceTransfers => Interlocked.Read(ref _bounceTransfers);

    /// <summary>Commands whose buffer was too large for a bounce buffer and was registered for the command alone.</summary>
    public long PinnedTransfers => Interlocked.Read(ref _pinnedTransfers);

    /// <summary>Commands whose buffer was registered memory, used in place.</summary>
    public long RegisteredTransfers => Interlocked.Read(ref _registeredTransfers);

    /// <summary>Times a send waited for a send descriptor or a receive credit.</summary>
    public long SendStalls => Interlocked.Read(ref _sendStalls);

    public long PdusSent => Interlocked.Read(ref _pdusSent);

    public long PdusReceived => Interlocked.Read(ref _pdusReceived);

    /// <summary>True when remote access goes through a memory window per command.</summary>
    public bool UsesWindows => _windows != null;

    /// <summary>Windows bound for commands.</summary>
    public long WindowBinds => _windows?.Binds ?? 0;

    /// <summary>Windows the target invalidated itself with its SCSI Response (Send with Invalidate).</summary>
    public long RemoteInvalidations => _windows?.RemoteInvalidations ?? 0;

    /// <summary>Windows invalidated by a local invalidate work request.</summary>
    public long LocalInvalidations => _windows?.LocalInvalidations ?? 0;

    /// <summary>The window key advertised for a command in flight (tests and diagnostics); null when it has none.</summary>
    internal uint? WindowKeyOf(uint itt)
    {
        lock (_gate) return _windows?.KeyOf(itt);
    }

    internal int FreeWindows
    {
        get { lock (_gate) return _windows?.FreeCount ?? 0; }
    }

    /// <summary>Receive buffers currently posted (for tests and diagnostics).</summary>
    internal int PostedReceives
    {
        get { lock (_gate) return _postedReceives; }
    }

    /// <summary>Posted receive buffers beyond the unexpected reserve not yet spoken for by an answer we wait for.</summary>
    internal int ReceiveCredits
    {
        get { lock (_gate) return _receiveCredits; }
    }

    internal int FreeSendDescriptors
    {
        get { lock (_gate) return _freeSendCount; }
    }

    internal int OutstandingControlRequests
    {
        get { lock (_gate) return _controlOutstanding; }
    }

    /// <summary>Posts every receive buffer (before connecting, so that the target never finds none).</summary>
    internal unsafe void PostAllReceives()
    {
        var count = _region.ReceiveCount;
        var requests = _region.ReceiveRequests;
        for (var i = 0; i < count; i++)
            requests[i].Next = i + 1 < count ? &requests[i + 1] : null;
        var rc = _wire.PostReceive(requests);
        if (rc != 0) throw new IscsiTransportException($"posting {count} receive buffers failed: {Errno.Describe(rc)}");
        lock (_gate)
        {
            _postedReceives = count;
            _receiveCredits = count - _options.UnexpectedPduReserve;
        }
    }

    public ValueTask StartFullFeaturePhaseAsync(FullFeaturePhaseContext context, CancellationToken cancellationToken)
    {
        lock (_gate) _controlLimit = _keys.TargetUnexpectedPduLimit;
        if (context.CommandWindow > _options.QueueDepth)
            IserLog.WindowAboveQueueDepth(_logger, context.CommandWindow, _options.QueueDepth);
        IserLog.FullFeaturePhase(_logger, _keys.ReceiveDataSegmentLength, _keys.SendDataSegmentLength, _keys.TargetUnexpectedPduLimit);
        return ValueTask.CompletedTask;
    }

    // ---------------------------------------------------------------- failure and teardown

    /// <summary>Ends the connection (idempotent): wakes both waiters; what they wait for now throws <paramref name="reason"/>.</summary>
    internal void Fail(IscsiException reason)
    {
        lock (_gate)
        {
            if (_failure != null) return;
            _failure = reason;
            _receiveWaiter.TryWake();
            WakeSenders();
        }
        if (Volatile.Read(ref _disposeStarted) == 0)
            IserLog.ConnectionFailed(_logger, RemoteEndPoint, reason.Message);
    }

    /// <summary>The RDMA-CM side reports the connection gone (DISCONNECTED, device removal, a failed CQ).</summary>
    internal void OnConnectionLost(string reason) => Fail(new IscsiTransportException(reason));

    private IscsiException Failure() => _failure!;

    public ValueTask DisposeAsync()
    {
        // Every caller waits for the same teardown (the core disposes from its failure path and again when its loops end).
        lock (_disposeGate)
        {
            if (_disposeTask == null)
            {
                Volatile.Write(ref _disposeStarted, 1);
                _disposeTask = DisposeCoreAsync();
            }
            return new ValueTask(_disposeTask);
        }
    }

    private async Task DisposeCoreAsync()
    {
        Fail(new IscsiTransportException("the iSER connection is closed"));
        try
        {
            _wire.Disconnect();
        }
        catch (Exception e)
        {
            IserLog.DisconnectFailed(_logger, e.Message);
        }
        // The disconnect moves the queue pair to the error state: every posted work request comes back flushed.
        Task drained;
        lock (_gate)
        {
            if (_postedReceives == 0 && _inflightSends == 0) drained = Task.CompletedTask;
            else drained = (_drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
        if (await Task.WhenAny(drained, Task.Delay(_options.DrainTimeout)).ConfigureAwait(false) != drained)
            IserLog.DrainTimedOut(_logger, _postedReceives, _inflightSends, _options.DrainTimeout.TotalSeconds);
        // Windows first: a window still bound to the queue pair (commands in flight at the failure) holds it, and rxe
        // then waits and warns when the queue pair is destroyed. Deallocating a window also invalidates it.
        _windows?.Dispose();
        try
        {
            await _wire.DestroyAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            IserLog.TeardownFailed(_logger, e.Message);
        }
        ReleaseAllTaskBuffers();
        _region.Deregister();
        lock (_gate)
        {
            _closed = true;
            if (_regionUsers > 0) return; // the receiver or sender still reads a descriptor: the last one out frees them
            _regionFreed = true;
        }
        _region.FreeMemory();
    }

    /// <summary>Marks the descriptors in use by the receiver or sender (caller holds _gate); false once they are gone.</summary>
    private bool EnterRegion()
    {
        if (_closed) return false;
        _regionUsers++;
        return true;
    }

    /// <summary>Ends a use of the descriptors; frees them when teardown waited for this (caller must not hold _gate).</summary>
    private void ExitRegion()
    {
        bool free;
        lock (_gate) free = ExitRegionLocked();
        if (free) _region.FreeMemory();
    }

    /// <summary>
    /// Ends a use of the descriptors (caller holds _gate, so that the exit shares the lock the caller takes anyway).
    /// True when the caller, after releasing _gate, must free them: teardown waited for this.
    /// </summary>
    private bool ExitRegionLocked()
    {
        if (--_regionUsers > 0 || !_closed || _regionFreed) return false;
        _regionFreed = true;
        return true;
    }

    /// <summary>Something a sender may wait for changed (caller holds _gate): wake the writer and a waiting ping.</summary>
    private void WakeSenders()
    {
        _sendWaiter.TryWake();
        _pingWaiter.TryWake();
    }

    private void CheckDrained()
    {
        if (_drained != null && _postedReceives == 0 && _inflightSends == 0) _drained.TrySetResult();
    }

    /// <summary>Completion of a posted receive (event loop thread).</summary>
    private sealed class ReceiveCompletion(IserConnection connection, int index) : IWorkCompletionHandler
    {
        public void OnWorkCompletion(in IbvWc completion) => connection.OnReceiveCompleted(index, completion);
    }

    /// <summary>Completion of a posted send (event loop thread).</summary>
    private sealed class SendCompletion(IserConnection connection, int index) : IWorkCompletionHandler
    {
        public void OnWorkCompletion(in IbvWc completion) => connection.OnSendCompleted(index, completion);
    }
}
