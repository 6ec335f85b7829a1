using System.Runtime.CompilerServices;
using System.Buffers.Binary;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Transport;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// Full feature phase on one transport connection: a writer loop that turns queued commands, Data-Out sequences
/// and control PDUs into PDUs (batched, flushed once per batch), and a receive loop that dispatches every PDU the
/// target sends. Anything malformed or unexpected fails this connection with a logged reason; the session then
/// fails or keeps (for reinstatement) the tasks that were on it.
/// </summary>
internal sealed class IscsiConnection
{
    private readonly IscsiSession _session;
    private readonly IIscsiConnection _transport;
    private readonly NegotiatedParameters _parameters;
    private readonly ILogger _logger;
    private readonly bool _transportPlacesData;
    private readonly AsyncSignal _writerSignal = new();
    private readonly Queue<SendWork> _controlQueue = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly byte[] _sendHeader = new byte[BasicHeaderSegment.Length + 1024];
    private readonly object _failGate = new();
    private uint _expStatSN;
    private Exception? _failure;
    private Exception? _announcedEnd;
    private bool _logoutCompleted;

    public IscsiConnection(IscsiSession session, IIscsiConnection transport, NegotiatedParameters parameters, uint expStatSN, ILogger logger)
    {
        _session = session;
        _transport = transport;
        _parameters = parameters;
        _expStatSN = expStatSN;
        _logger = logger;
        _transportPlacesData = (transport.Capabilities & IscsiTransportCapabilities.PlacesScsiData) != 0;
    }

    public NegotiatedParameters Parameters => _parameters;

    public IIscsiConnection Transport => _transport;

    public uint ExpStatSN => Volatile.Read(ref _expStatSN);

    /// <summary>Wakes the writer: commands are queued or the window opened.</summary>
    public void SignalWriter() => _writerSignal.Set();

    /// <summary>
    /// Queues a PDU that needs no CmdSN ordering (Data-Out, NOP-Out reply) or a control request. Caller holds the
    /// session lock, and calls <see cref="SignalWriter"/> once it has let go of it (the writer may run inline there).
    /// </summary>
    public void EnqueueControl(in SendWork work) => _controlQueue.Enqueue(work);

    /// <summary>Runs both loops until the connection ends. Returns the failure, or null after an orderly logout.</summary>
    public async Task<Exception?> RunAsync()
    {
        var writer = Task.Run(WriterLoopAsync);
        try
        {
            await ReceiveLoopAsync(_stop.Token).ConfigureAwait(false);
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
                while (!token.IsCancellationRequested && TryTakeWork(out var work))
                {
                    if (_logger.IsEnabled(LogLevel.Trace)) _logger.LogTrace("sending {Kind} ITT 0x{Itt:x8} CmdSN {CmdSN}", work.Control?.Kind.ToString() ?? work.Kind.ToString(), work.Control?.Itt ?? work.Itt, work.CmdSN);
                    await WriteAsync(work, token).ConfigureAwait(false);
                    wrote = true;
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

    private bool TryTakeWork(out SendWork work)
    {
        lock (_session.Lock)
        {
            while (_controlQueue.TryPeek(out work))
            {
                if (work.Kind == SendWorkKind.Control && work.Control!.Kind == ControlKind.Text && !work.Control.Immediate)
                {
                    if (!_session.Window.IsOpen) break;
                    _controlQueue.Dequeue();
                    work = work with { CmdSN = _session.Window.Take() };
                    return true;
                }
                _controlQueue.Dequeue();
                if (work.Kind is SendWorkKind.Control or SendWorkKind.NopOutReply) work = work with { CmdSN = _session.Window.CmdSN };
                return true;
            }
            if (_session.TryTakeCommand(this, out var task))
            {
                work = SendWork.ForCommand(task);
                return true;
            }
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
            await WriteDataOutSequenceAsync(work.Itt, work.Lun, BasicHeaderSegment.ReservedTag, work.Buffer, immediate, unsolicited - immediate, token).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteDataOutAsync(SendWork work, CancellationToken token)
    {
        await WriteDataOutSequenceAsync(work.Itt, work.Lun, work.TargetTransferTag, work.Buffer, work.Offset, work.Length, token).ConfigureAwait(false);
        _session.OnR2TServed(work.Itt);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteDataOutSequenceAsync(uint itt, ulong lun, uint ttt, Memory<byte> buffer, int offset, int length, CancellationToken token)
    {
        var end = offset + length;
        var maxSegment = _parameters.MaxSendDataSegmentLength;
        uint dataSN = 0;
        var encodedLun = LunAddress.Encode(lun);
        while (offset < end)
        {
            var segment = Math.Min(maxSegment, end - offset);
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
        new NopOutPdu
        {
            Immediate = true,
            DataSegmentLength = work.ControlData?.Length ?? 0,
            Lun = work.EncodedLun,
            InitiatorTaskTag = BasicHeaderSegment.ReservedTag,
            TargetTransferTag = work.TargetTransferTag,
            CmdSN = work.CmdSN,
            ExpStatSN = ExpStatSN,
        }.Write(_sendHeader);
        return _transport.SendAsync(new OutboundPdu(_sendHeader.AsMemory(0, BasicHeaderSegment.Length), work.ControlData), token);
    }

    private ValueTask WriteControlAsync(SendWork work, CancellationToken token)
    {
        var c = work.Control!;
        switch (c.Kind)
        {
            case ControlKind.Ping:
                new NopOutPdu
                {
                    Immediate = true,
                    DataSegmentLength = c.Data.Length,
                    InitiatorTaskTag = c.Itt,
                    TargetTransferTag = BasicHeaderSegment.ReservedTag,
                    CmdSN = work.CmdSN,
                    ExpStatSN = ExpStatSN,
                }.Write(_sendHeader);
                break;
            case ControlKind.TaskManagement:
                new TaskManagementRequestPdu
                {
                    Immediate = true,
                    Function = c.Function,
                    Lun = LunAddress.Encode(c.Lun),
                    InitiatorTaskTag = c.Itt,
                    ReferencedTaskTag = c.ReferencedTaskTag,
                    CmdSN = work.CmdSN,
                    ExpStatSN = ExpStatSN,
                    RefCmdSN = c.RefCmdSN,
                }.Write(_sendHeader);
                break;
            case ControlKind.Text:
                new TextRequestPdu
                {
                    Immediate = c.Immediate,
                    Final = true,
                    DataSegmentLength = c.Data.Length,
                    Lun = 0,
                    InitiatorTaskTag = c.Itt,
                    TargetTransferTag = c.TargetTransferTag,
                    CmdSN = work.CmdSN,
                    ExpStatSN = ExpStatSN,
                }.Write(_sendHeader);
                break;
            case ControlKind.Logout:
                new LogoutRequestPdu
                {
                    Immediate = true,
                    Reason = LogoutReason.CloseSession,
                    InitiatorTaskTag = c.Itt,
                    CmdSN = work.CmdSN,
                    ExpStatSN = ExpStatSN,
                }.Write(_sendHeader);
                break;
        }
        return _transport.SendAsync(new OutboundPdu(_sendHeader.AsMemory(0, BasicHeaderSegment.Length), c.Data), token);
    }

    // ---------------------------------------------------------------- receiver

    private async Task ReceiveLoopAsync(CancellationToken token)
    {
        while (true)
        {
            var pdu = await _transport.ReceiveHeaderAsync(token).ConfigureAwait(false);
            var length = pdu.DataSegmentLength;
            var opcode = pdu.Opcode;
            Interlocked.Increment(ref _session.Counters.PdusReceived);
            if (_logger.IsEnabled(LogLevel.Trace)) _logger.LogTrace("received {Opcode} ITT 0x{Itt:x8}, {Length} data bytes", opcode, pdu.InitiatorTaskTag, length);
            if (length > _parameters.MaxRecvDataSegmentLength)
                throw new IscsiProtocolException($"{opcode} PDU with a {length}-byte data segment exceeds the negotiated MaxRecvDataSegmentLength of {_parameters.MaxRecvDataSegmentLength}");
            switch (opcode)
            {
                case IscsiOpcode.DataIn:
                    await OnDataInAsync(pdu, token).ConfigureAwait(false);
                    break;
                case IscsiOpcode.ScsiResponse:
                    await OnScsiResponseAsync(pdu, token).ConfigureAwait(false);
                    break;
                case IscsiOpcode.ReadyToTransfer:
                    OnReadyToTransfer(pdu);
                    break;
                case IscsiOpcode.NopIn:
                    await OnNopInAsync(pdu, token).ConfigureAwait(false);
                    break;
                case IscsiOpcode.TaskManagementResponse:
                case IscsiOpcode.TextResponse:
                case IscsiOpcode.LogoutResponse:
                    await OnControlResponseAsync(pdu, token).ConfigureAwait(false);
                    break;
                case IscsiOpcode.Reject:
                    await OnRejectAsync(pdu, token).ConfigureAwait(false);
                    break;
                case IscsiOpcode.AsyncMessage:
                    await OnAsyncMessageAsync(pdu, token).ConfigureAwait(false);
                    break;
                case IscsiOpcode.LoginResponse:
                    throw new IscsiProtocolException("Login Response received in full feature phase");
                default:
                    throw new IscsiProtocolException($"unknown or unexpected opcode 0x{(byte)opcode:x2} from the target");
            }
        }
    }

    private void AdvanceStatSN(uint statSN)
    {
        var expected = Volatile.Read(ref _expStatSN);
        if (SerialNumber.GreaterThanOrEqual(statSN, expected)) Volatile.Write(ref _expStatSN, statSN + 1);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadOnlyMemory<byte>> ReceiveDataAsync(InboundPdu pdu, CancellationToken token)
        => pdu.DataSegmentLength == 0 ? ReadOnlyMemory<byte>.Empty : await _transport.ReceiveDataAsync(default, token).ConfigureAwait(false);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask OnDataInAsync(InboundPdu pdu, CancellationToken token)
    {
        var d = DataInPdu.Read(pdu.Header.Span);
        var length = d.DataSegmentLength;
        if (_transportPlacesData)
            throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8} on a transport that places data itself");
        Memory<byte> destination;
        ScsiTask task;
        lock (_session.Lock)
        {
            task = FindSentTask(d.InitiatorTaskTag, "Data-In");
            if (task.Direction != ScsiDataDirection.Read)
                throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8}, a {task.CommandName} that reads nothing");
            if ((long)d.BufferOffset + length > task.TransferLength)
                throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8} at offset {d.BufferOffset} with {length} bytes overruns the {task.TransferLength}-byte buffer");
            if (d.DataSN != task.NextDataSN)
                throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8} has DataSN {d.DataSN}, expected {task.NextDataSN}");
            if (_parameters.DataPduInOrder && d.BufferOffset != (uint)task.DataInBytes)
                throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8} at offset {d.BufferOffset}, expected {task.DataInBytes} (DataPDUInOrder=Yes)");
            task.NextDataSN++;
            destination = task.Buffer.Slice((int)d.BufferOffset, length);
        }
        // Straight from the transport into the caller's buffer.
        if (length > 0) await _transport.ReceiveDataAsync(destination, token).ConfigureAwait(false);
        Interlocked.Increment(ref _session.Counters.DataInPdus);
        lock (_session.Lock) task.DataInBytes += length;
        _session.UpdateWindow(d.ExpCmdSN, d.MaxCmdSN);
        if (d.HasStatus)
        {
            if (!d.Final) throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8} carries status without the F bit");
            AdvanceStatSN(d.StatSN);
            var status = (ScsiStatus)d.Status;
            if (status == ScsiStatus.CheckCondition)
                throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8} carries CHECK CONDITION, which needs a SCSI Response");
            _session.CompleteTask(task, new ScsiCommandResult(status, IscsiServiceResponse.CommandCompleted, task.TransferLength, d.ResidualCount, d.Underflow, d.Overflow, null));
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask OnScsiResponseAsync(InboundPdu pdu, CancellationToken token)
    {
        var r = ScsiResponsePdu.Read(pdu.Header.Span);
        var data = await ReceiveDataAsync(pdu, token).ConfigureAwait(false);
        ScsiTask task;
        lock (_session.Lock) task = FindSentTask(r.InitiatorTaskTag, "SCSI Response");
        AdvanceStatSN(r.StatSN);
        _session.UpdateWindow(r.ExpCmdSN, r.MaxCmdSN);
        SenseData? sense = null;
        if (data.Length >= 2)
        {
            var senseLength = BinaryPrimitives.ReadUInt16BigEndian(data.Span);
            if (senseLength > data.Length - 2)
                throw new IscsiProtocolException($"SCSI Response for ITT 0x{r.InitiatorTaskTag:x8} announces {senseLength} bytes of sense in a {data.Length}-byte segment");
            if (senseLength > 0) sense = SenseData.TryParse(data.Span.Slice(2, senseLength));
        }
        else if (data.Length == 1)
            throw new IscsiProtocolException($"SCSI Response for ITT 0x{r.InitiatorTaskTag:x8} has a 1-byte data segment");
        if (r.Status == (byte)ScsiStatus.Good && task.Direction == ScsiDataDirection.Read && !r.Underflow && task.DataInBytes < task.TransferLength && !_transportPlacesData)
            throw new IscsiProtocolException($"{task.CommandName} (ITT 0x{r.InitiatorTaskTag:x8}) completed with {task.DataInBytes} of {task.TransferLength} bytes and no underflow");
        _session.CompleteTask(task, new ScsiCommandResult((ScsiStatus)r.Status, r.Response, task.TransferLength, r.ResidualCount, r.Underflow, r.Overflow, sense));
    }

    private void OnReadyToTransfer(InboundPdu pdu)
    {
        var r = ReadyToTransferPdu.Read(pdu.Header.Span);
        if (pdu.DataSegmentLength != 0) throw new IscsiProtocolException("R2T with a data segment");
        if (_transportPlacesData)
            throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8} on a transport that places data itself");
        lock (_session.Lock)
        {
            var task = FindSentTask(r.InitiatorTaskTag, "R2T");
            if (task.Direction != ScsiDataDirection.Write)
                throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8}, a {task.CommandName} that writes nothing");
            if (r.DesiredDataTransferLength == 0 || r.DesiredDataTransferLength > (uint)_parameters.MaxBurstLength)
                throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8} asks for {r.DesiredDataTransferLength} bytes (MaxBurstLength {_parameters.MaxBurstLength})");
            if ((long)r.BufferOffset + r.DesiredDataTransferLength > task.TransferLength)
                throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8} asks for bytes {r.BufferOffset}..{r.BufferOffset + r.DesiredDataTransferLength} of a {task.TransferLength}-byte write");
            if (r.R2TSN != task.NextR2TSN)
                throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8} has R2TSN {r.R2TSN}, expected {task.NextR2TSN}");
            if (task.OutstandingR2Ts >= _parameters.MaxOutstandingR2T)
                throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8} exceeds MaxOutstandingR2T={_parameters.MaxOutstandingR2T}");
            if (r.TargetTransferTag == BasicHeaderSegment.ReservedTag)
                throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8} carries the reserved TTT 0xffffffff");
            task.NextR2TSN++;
            task.OutstandingR2Ts++;
            Interlocked.Increment(ref _session.Counters.R2Ts);
            EnqueueControl(SendWork.ForR2T(task, r.TargetTransferTag, (int)r.BufferOffset, (int)r.DesiredDataTransferLength));
        }
        SignalWriter();
        _session.UpdateWindow(r.ExpCmdSN, r.MaxCmdSN);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask OnNopInAsync(InboundPdu pdu, CancellationToken token)
    {
        var n = NopInPdu.Read(pdu.Header.Span);
        var data = await ReceiveDataAsync(pdu, token).ConfigureAwait(false);
        _session.UpdateWindow(n.ExpCmdSN, n.MaxCmdSN);
        if (n.InitiatorTaskTag != BasicHeaderSegment.ReservedTag)
        {
            AdvanceStatSN(n.StatSN);
            if (!_session.CompleteControl(n.InitiatorTaskTag, ControlKind.Ping, pdu.Header.Span, data.Span))
                throw new IscsiProtocolException($"NOP-In for unknown ITT 0x{n.InitiatorTaskTag:x8}");
        }
        if (n.TargetTransferTag != BasicHeaderSegment.ReservedTag)
        {
            if (n.InitiatorTaskTag != BasicHeaderSegment.ReservedTag)
                throw new IscsiProtocolException("NOP-In with both ITT and TTT set");
            _logger.LogTrace("target ping (TTT 0x{Ttt:x8}), answering", n.TargetTransferTag);
            lock (_session.Lock)
                EnqueueControl(SendWork.ForNopOutReply(n.Lun, n.TargetTransferTag, data.Length > 0 ? data.ToArray() : null));
            SignalWriter();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask OnControlResponseAsync(InboundPdu pdu, CancellationToken token)
    {
        var data = await ReceiveDataAsync(pdu, token).ConfigureAwait(false);
        var itt = pdu.InitiatorTaskTag;
        AdvanceStatSN(BasicHeaderSegment.U32(pdu.Header.Span, 24));
        _session.UpdateWindow(BasicHeaderSegment.U32(pdu.Header.Span, 28), BasicHeaderSegment.U32(pdu.Header.Span, 32));
        var kind = pdu.Opcode switch
        {
            IscsiOpcode.TaskManagementResponse => ControlKind.TaskManagement,
            IscsiOpcode.TextResponse => ControlKind.Text,
            _ => ControlKind.Logout,
        };
        // Only a logout we asked for ends the connection in order; a target-requested one is a connection loss.
        if (kind == ControlKind.Logout && _session.State == IscsiSessionState.LoggingOut) MarkLoggedOut();
        if (!_session.CompleteControl(itt, kind, pdu.Header.Span, data.Span))
            throw new IscsiProtocolException($"{pdu.Opcode} for unknown ITT 0x{itt:x8}");
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask OnRejectAsync(InboundPdu pdu, CancellationToken token)
    {
        var reject = RejectPdu.Read(pdu.Header.Span);
        var data = await ReceiveDataAsync(pdu, token).ConfigureAwait(false);
        AdvanceStatSN(reject.StatSN);
        _session.UpdateWindow(reject.ExpCmdSN, reject.MaxCmdSN);
        if (data.Length < BasicHeaderSegment.Length)
            throw new IscsiProtocolException($"Reject ({reject.Reason}) without the rejected header");
        var rejected = data.Span[..BasicHeaderSegment.Length];
        var opcode = BasicHeaderSegment.GetOpcode(rejected);
        var itt = BasicHeaderSegment.GetInitiatorTaskTag(rejected);
        if (reject.Reason is RejectReason.DataDigestError or RejectReason.ProtocolError or RejectReason.InvalidDataAck)
            throw new IscsiProtocolException($"target rejected our {opcode} (ITT 0x{itt:x8}): {reject.Reason}");
        var error = new IscsiCommandRejectedException(reject.Reason, opcode);
        _logger.LogWarning("target rejected {Opcode} (ITT 0x{Itt:x8}): {Reason}", opcode, itt, reject.Reason);
        if (opcode == IscsiOpcode.ScsiCommand || opcode == IscsiOpcode.DataOut)
            _session.FailTask(itt, error);
        else
            _session.FailControl(itt, error);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask OnAsyncMessageAsync(InboundPdu pdu, CancellationToken token)
    {
        var m = AsyncMessagePdu.Read(pdu.Header.Span);
        var data = await ReceiveDataAsync(pdu, token).ConfigureAwait(false);
        AdvanceStatSN(m.StatSN);
        _session.UpdateWindow(m.ExpCmdSN, m.MaxCmdSN);
        switch (m.Event)
        {
            case AsyncEvent.ScsiAsyncEvent:
            {
                SenseData? sense = null;
                if (data.Length >= 2)
                {
                    var senseLength = BinaryPrimitives.ReadUInt16BigEndian(data.Span);
                    if (senseLength <= data.Length - 2) sense = SenseData.TryParse(data.Span.Slice(2, senseLength));
                }
                _logger.LogWarning("target reports a SCSI asynchronous event on LUN {Lun}: {Sense}", LunAddress.Decode(m.Lun), sense?.ToString() ?? "no sense data");
                _session.RaiseAsyncEvent(LunAddress.Decode(m.Lun), sense);
                break;
            }
            case AsyncEvent.LogoutRequested:
                _logger.LogWarning("target requests logout within {Seconds} s", m.Parameter3);
                lock (_failGate) _announcedEnd ??= new IscsiConnectionLostException("the target requested a logout");
                _session.OnLogoutRequested(this);
                break;
            case AsyncEvent.ConnectionDropping:
            case AsyncEvent.SessionDropping:
                throw new IscsiConnectionLostException($"target announced it is dropping the {(m.Event == AsyncEvent.SessionDropping ? "session" : "connection")} (Time2Wait {m.Parameter2} s)");
            case AsyncEvent.NegotiationRequested:
                _logger.LogInformation("target requests parameter renegotiation; answering with an empty Text Request");
                _session.StartEmptyTextNegotiation(this);
                break;
            case AsyncEvent.TaskTerminationRequested:
                _logger.LogWarning("target requests task termination on LUN {Lun}", LunAddress.Decode(m.Lun));
                break;
            default:
                _logger.LogInformation("target sent asynchronous event {Event} (vendor code {Code})", m.Event, m.VendorCode);
                break;
        }
    }

    private ScsiTask FindSentTask(uint itt, string what)
    {
        var task = _session.Tasks.Find(itt);
        if (task == null || task.State != ScsiTaskState.Sent || task.Connection != this)
            throw new IscsiProtocolException($"{what} for unknown ITT 0x{itt:x8}");
        return task;
    }
}

internal enum SendWorkKind : byte
{
    Command,
    DataOut,
    NopOutReply,
    Control,
}

/// <summary>
/// One unit of writer work. Self-contained (a snapshot of the task's fields), so the writer never depends on a
/// pooled task object that may already have completed.
/// </summary>
internal readonly record struct SendWork
{
    public SendWorkKind Kind { get; init; }
    public uint Itt { get; init; }
    public ulong Lun { get; init; }
    public ulong EncodedLun { get; init; }
    public uint CmdSN { get; init; }
    public uint TargetTransferTag { get; init; }
    public ScsiDataDirection Direction { get; init; }
    public TaskAttribute Attribute { get; init; }
    public Memory<byte> Buffer { get; init; }
    public ReadOnlyMemory<byte> Cdb { get; init; }
    public int Offset { get; init; }
    public int Length { get; init; }
    public byte[]? ControlData { get; init; }
    public ControlRequest? Control { get; init; }

    public static SendWork ForCommand(ScsiTask task) => new()
    {
        Kind = SendWorkKind.Command,
        Itt = task.Itt,
        Lun = task.Lun,
        CmdSN = task.CmdSN,
        Direction = task.Direction,
        Attribute = task.Attribute,
        Buffer = task.Buffer,
        // Not copied: the writer puts the CDB into the header before its first await, while the task cannot complete yet.
        Cdb = task.Cdb.AsMemory(0, task.CdbLength),
    };

    public static SendWork ForR2T(ScsiTask task, uint ttt, int offset, int length) => new()
    {
        Kind = SendWorkKind.DataOut,
        Itt = task.Itt,
        Lun = task.Lun,
        TargetTransferTag = ttt,
        Buffer = task.Buffer,
        Offset = offset,
        Length = length,
    };

    public static SendWork ForNopOutReply(ulong encodedLun, uint ttt, byte[]? data) => new()
    {
        Kind = SendWorkKind.NopOutReply,
        EncodedLun = encodedLun,
        TargetTransferTag = ttt,
        ControlData = data,
    };

    public static SendWork ForControl(ControlRequest request) => new() { Kind = SendWorkKind.Control, Control = request };
}
