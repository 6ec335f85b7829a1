using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Buffers.Binary;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.ConnectionPort;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// Full feature phase on one transport connection: a writer loop that turns queued commands, Data-Out sequences
/// and control PDUs into PDUs (batched, flushed once per batch), and a receive loop that dispatches every PDU the
/// target sends. Anything malformed or unexpected fails this connection with a logged reason; the session then
/// fails or keeps (for reinstatement) the tasks that were on it.
/// </summary>
internal sealed class FullFeaturePhase
{
    private readonly IscsiSession _session;
    private readonly TaskLifecycle _tasks;
    private readonly IIscsiConnection _transport;
    private readonly NegotiatedParameters _parameters;
    private readonly ILogger _logger;
    private readonly ConnectionReceiver _receiver;
    private readonly AsyncSignal _writerSignal = new();
    private readonly Queue<SendWork> _controlQueue = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly byte[] _sendHeader = new byte[BasicHeaderSegment.Length + 1024];
    private readonly object _failGate = new();
    private Exception? _failure;
    private Exception? _announcedEnd;
    private bool _logoutCompleted;

    public FullFeaturePhase(IscsiSession session, IIscsiConnection transport, NegotiatedParameters parameters, uint expStatSN, ILogger logger)
    {
        _session = session;
        _tasks = session.Tasks;
        _transport = transport;
        _parameters = parameters;
        _logger = logger;
        Owed = new AnswersOwed(parameters);
        _receiver = new ConnectionReceiver(this, session, transport, parameters, expStatSN, logger);
    }

    public NegotiatedParameters Parameters => _parameters;

    /// <summary>The commands sent on this connection and not answered yet.</summary>
    public AnswersOwed Owed { get; }

    public IIscsiConnection Transport => _transport;

    public uint ExpStatSN => _receiver.ExpStatSN;

    /// <summary>The transport takes pings beside the writer (<see cref="IscsiTransportCapabilities.ConcurrentPing"/>).</summary>
    public bool SendsPingsConcurrently => (_transport.Capabilities & IscsiTransportCapabilities.ConcurrentPing) != 0;

    /// <summary>
    /// Sends a NOP-Out ping now, beside the writer (immediate, so it takes no CmdSN from the window and needs no
    /// ordering with the commands the writer sends). A failed send fails the connection, and so the ping.
    /// </summary>
    public void SendPingBesideWriter(ControlRequest request) => _ = SendPingBesideWriterAsync(request);

    private async Task SendPingBesideWriterAsync(ControlRequest request)
    {
        var header = new byte[BasicHeaderSegment.Length]; // pings are rare: the writer's header buffer stays the writer's
        _tasks.TryTakeCmdSN(immediate: true, out var cmdSN);
        request.WriteHeader(header, cmdSN, ExpStatSN);
        var token = _stop.Token;
        try
        {
            await _transport.SendAsync(new OutboundPdu(header, request.Data), token).ConfigureAwait(false);
            await _transport.FlushAsync(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Fail(e is IscsiException ? e : new IscsiConnectionLostException($"sending a ping failed: {e.Message}", e));
        }
    }

    /// <summary>Wakes the writer: commands are queued or the window opened.</summary>
    public void SignalWriter() => _writerSignal.Set();

    /// <summary>
    /// Queues a PDU that needs no CmdSN ordering (Data-Out, NOP-Out reply) or a control request. The caller then calls
    /// <see cref="SignalWriter"/>, outside any lock of its own (the writer may run inline there).
    /// </summary>
    public void EnqueueControl(in SendWork work)
    {
        lock (_controlQueue) _controlQueue.Enqueue(work);
    }

    /// <summary>Stopwatch timestamp of the last PDU header received: any traffic proves the connection alive.</summary>
    public long LastReceiveTimestamp => _receiver.LastReceiveTimestamp;

    /// <summary>Runs both loops until the connection ends. Returns the failure, or null after an orderly logout.</summary>
    public async Task<Exception?> RunAsync()
    {
        var writer = Task.Run(WriterLoopAsync);
        try
        {
            await _receiver.RunAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Fail(e);
        }
        Fail(new IscsiConnectionLostException("connection closed"));
        _writerSignal.Set();
        try { await writer.ConfigureAwait(false); } catch { /* the writer reports through Fail */ }
        await _transport.DisposeAsync().ConfigureAwait(false);
        lock (_failGate) return _logoutCompleted ? null : _failure;
    }

    /// <summary>Ends the connection (idempotent): stops both loops and closes the transport.</summary>
    public void Fail(Exception reason)
    {
        lock (_failGate)
        {
            if (_failure != null) return;
            // A target that announced why it ends the connection (logout request) then closes it: report the why.
            _failure = _announcedEnd ?? reason;
        }
        _stop.Cancel();
        _writerSignal.Set();
        // Closing the transport unblocks a receive that is waiting for bytes.
        _ = _transport.DisposeAsync().AsTask().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
    }

    /// <summary>The target said why it will end the connection (a logout request): a later failure reports that.</summary>
    public void AnnounceEnd(Exception why)
    {
        lock (_failGate) _announcedEnd ??= why;
    }

    /// <summary>The target answered our logout: the end of the connection that follows is orderly.</summary>
    public void MarkLoggedOut()
    {
        lock (_failGate) _logoutCompleted = true;
    }

    public bool IsFailed
    {
        get { lock (_failGate) return _failure != null; }
    }

    // ---------------------------------------------------------------- writer

    private async Task WriterLoopAsync()
    {
        var token = _stop.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                await _writerSignal.WaitAsync().ConfigureAwait(false);
                var wrote = false;
                while (!token.IsCancellationRequested && TryTakeWork(out var work, out var more))
                {
                    if (_logger.IsEnabled(LogLevel.Trace)) SessionLog.Sending(_logger, work.Control?.Kind.ToString() ?? work.Kind.ToString(), work.Control?.Itt ?? work.Itt, work.CmdSN);
                    await WriteAsync(work, token).ConfigureAwait(false);
                    wrote = true;
                    if (!more) break; // nothing else was ready: what comes later signals the writer again
                }
                if (wrote) await _transport.FlushAsync(token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Fail(e is IscsiException ? e : new IscsiConnectionLostException($"send failed: {e.Message}", e));
        }
    }

    /// <summary>The next PDU to write: control work first, then commands in CmdSN order. <paramref name="more"/> is false
    /// when nothing else was ready at the time (then the writer flushes without asking again).</summary>
    private bool TryTakeWork(out SendWork work, out bool more)
    {
        more = true;
        lock (_controlQueue)
        {
            if (_controlQueue.TryPeek(out work))
            {
                var immediate = work.Kind != SendWorkKind.Control || work.Control!.Immediate;
                if (_tasks.TryTakeCmdSN(immediate, out var cmdSN))
                {
                    _controlQueue.Dequeue();
                    if (work.Kind is SendWorkKind.Control or SendWorkKind.NopOutReply) work = work with { CmdSN = cmdSN };
                    return true;
                }
            }
        }
        if (_tasks.TryTakeCommand(this, out var task, out var moreCommands))
        {
            Interlocked.Increment(ref _session.Counters.CommandsSent);
            work = SendWork.ForCommand(task);
            // Read without the lock: control work queued meanwhile comes with a signal of its own.
            more = moreCommands || _controlQueue.Count > 0;
            return true;
        }
        work = default;
        return false;
    }

    private ValueTask WriteAsync(in SendWork work, CancellationToken token) => work.Kind switch
    {
        SendWorkKind.Command => WriteCommandAsync(work, token),
        SendWorkKind.DataOut => WriteDataOutAsync(work, token),
        SendWorkKind.NopOutReply => WriteNopOutReplyAsync(work, token),
        SendWorkKind.Control => WriteControlAsync(work, token),
        _ => throw new InvalidOperationException($"unknown send work {work.Kind}"),
    };

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteCommandAsync(SendWork work, CancellationToken token)
    {
        var p = _parameters;
        var length = work.Buffer.Length;
        var write = work.Direction == ScsiDataDirection.Write;
        int immediate = 0, unsolicited = 0;
        if (write && length > 0)
        {
            var firstBurst = Math.Min(p.FirstBurstLength, length);
            if (p.ImmediateData) immediate = Math.Min(firstBurst, p.MaxSendDataSegmentLength);
            unsolicited = p.InitialR2T ? immediate : firstBurst;
        }
        var pdu = new ScsiCommandPdu
        {
            Final = unsolicited == immediate,
            Read = work.Direction == ScsiDataDirection.Read && length > 0,
            Write = write && length > 0,
            Attribute = work.Attribute,
            DataSegmentLength = immediate,
            Lun = LunAddress.Encode(work.Lun),
            InitiatorTaskTag = work.Itt,
            ExpectedDataTransferLength = (uint)length,
            CmdSN = work.CmdSN,
            ExpStatSN = ExpStatSN,
            Cdb = work.Cdb,
        };
        var headerLength = pdu.WriteHeader(_sendHeader);
        var taskData = length > 0
            ? new ScsiTaskData(work.Itt, work.Buffer, write ? 0 : length, write ? length : 0, unsolicited)
            : default;
        await _transport.SendAsync(new OutboundPdu(_sendHeader.AsMemory(0, headerLength), work.Buffer[..immediate], taskData), token).ConfigureAwait(false);
        if (unsolicited > immediate)
            await WriteDataOutSequenceAsync(work.Itt, work.Lun, BasicHeaderSegment.ReservedTag, work.Buffer, immediate, unsolicited - immediate, solicited: false, token).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private ValueTask WriteDataOutAsync(SendWork work, CancellationToken token)
        => WriteDataOutSequenceAsync(work.Itt, work.Lun, work.TargetTransferTag, work.Buffer, work.Offset, work.Length, solicited: true, token);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteDataOutSequenceAsync(uint itt, ulong lun, uint ttt, Memory<byte> buffer, int offset, int length, bool solicited, CancellationToken token)
    {
        var end = offset + length;
        var maxSegment = _parameters.MaxSendDataSegmentLength;
        uint dataSN = 0;
        var encodedLun = LunAddress.Encode(lun);
        while (offset < end)
        {
            var segment = Math.Min(maxSegment, end - offset);
            // The R2T stops counting before its last Data-Out leaves: the target may answer that with the next R2T
            // before this send returns.
            if (solicited && offset + segment == end) _tasks.R2TServed(itt, this);
            new DataOutPdu
            {
                Final = offset + segment == end,
                DataSegmentLength = segment,
                Lun = encodedLun,
                InitiatorTaskTag = itt,
                TargetTransferTag = ttt,
                ExpStatSN = ExpStatSN,
                DataSN = dataSN++,
                BufferOffset = (uint)offset,
            }.Write(_sendHeader);
            await _transport.SendAsync(new OutboundPdu(_sendHeader.AsMemory(0, BasicHeaderSegment.Length), buffer.Slice(offset, segment)), token).ConfigureAwait(false);
            Interlocked.Increment(ref _session.Counters.DataOutPdus);
            offset += segment;
        }
    }

    private ValueTask WriteNopOutReplyAsync(SendWork work, CancellationToken token)
    {
        NopExchange.WriteReply(work.EncodedLun, work.TargetTransferTag, work.ControlData?.Length ?? 0, _sendHeader, work.CmdSN, ExpStatSN);
        return _transport.SendAsync(new OutboundPdu(_sendHeader.AsMemory(0, BasicHeaderSegment.Length), work.ControlData), token);
    }

    private ValueTask WriteControlAsync(SendWork work, CancellationToken token)
    {
        var c = work.Control!;
        c.WriteHeader(_sendHeader, work.CmdSN, ExpStatSN);
        return _transport.SendAsync(new OutboundPdu(_sendHeader.AsMemory(0, BasicHeaderSegment.Length), c.Data), token);
    }
}
