using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.ConnectionPort;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// The receiving half of a connection in full feature phase: every PDU the target sends, dispatched and checked
/// against the task it names. Owns what the target's PDUs tell (ExpStatSN, when the last one came); anything to send
/// in answer goes to its <see cref="FullFeaturePhase"/>'s writer.
/// </summary>
internal sealed class ConnectionReceiver
{
    private readonly FullFeaturePhase _connection;
    private readonly IscsiSession _session;
    private readonly TaskLifecycle _tasks;
    private readonly IIscsiConnection _transport;
    private readonly NegotiatedParameters _parameters;
    private readonly ILogger _logger;
    private readonly bool _transportPlacesData;
    private uint _expStatSN;
    private long _lastReceive;

    public ConnectionReceiver(FullFeaturePhase connection, IscsiSession session, IIscsiConnection transport, NegotiatedParameters parameters,
        uint expStatSN, ILogger logger)
    {
        _connection = connection;
        _session = session;
        _tasks = session.Tasks;
        _transport = transport;
        _parameters = parameters;
        _logger = logger;
        _expStatSN = expStatSN;
        _lastReceive = Stopwatch.GetTimestamp();
        _transportPlacesData = (transport.Capabilities & IscsiTransportCapabilities.PlacesScsiData) != 0;
    }

    public uint ExpStatSN => Volatile.Read(ref _expStatSN);

    /// <summary>Stopwatch timestamp of the last PDU header received: any traffic proves the connection alive.</summary>
    public long LastReceiveTimestamp => Interlocked.Read(ref _lastReceive);

    /// <summary>
    /// Receives and dispatches PDUs until the connection fails. PDUs that one network receive brought are handled as
    /// a burst (<see cref="IscsiSessionOptions.ReceiveBursts"/>), which ends before any wait for the network.
    /// </summary>
    public async Task RunAsync(CancellationToken token)
    {
        var bursts = _session.Options.ReceiveBursts;
        var inBurst = false;
        try
        {
            while (true)
            {
                if (!_transport.HasBufferedHeader)
                {
                    if (inBurst)
                    {
                        inBurst = false;
                        bursts!.BurstEnded();
                    }
                    var owed = _connection.Owed;
                    _transport.ExpectAnswers(owed.AnswersOnly, owed.Bytes);
                }
                var receiving = _transport.ReceiveHeaderAsync(token);
                if (inBurst && !receiving.IsCompleted)
                {
                    inBurst = false;
                    bursts!.BurstEnded();
                }
                var pdu = await receiving.ConfigureAwait(false);
                if (bursts != null && !inBurst)
                {
                    inBurst = true;
                    bursts.BurstStarted();
                }
                var handling = DispatchAsync(pdu, token);
                if (inBurst && !handling.IsCompleted)
                {
                    // The rest of this PDU is still on its way: what the burst held goes now, on this thread.
                    inBurst = false;
                    bursts!.BurstEnded();
                }
                await handling.ConfigureAwait(false);
            }
        }
        finally
        {
            if (inBurst) bursts!.BurstEnded();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask DispatchAsync(InboundPdu pdu, CancellationToken token)
    {
        Interlocked.Exchange(ref _lastReceive, Stopwatch.GetTimestamp());
        var length = pdu.DataSegmentLength;
        var opcode = pdu.Opcode;
        Interlocked.Increment(ref _session.Counters.PdusReceived);
        if (_logger.IsEnabled(LogLevel.Trace)) SessionLog.Received(_logger, opcode, pdu.InitiatorTaskTag, length);
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
        var status = (ScsiStatus)d.Status;
        if (d.HasStatus && !d.Final) throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8} carries status without the F bit");
        if (d.HasStatus && status == ScsiStatus.CheckCondition)
            throw new IscsiProtocolException($"Data-In for ITT 0x{d.InitiatorTaskTag:x8} carries CHECK CONDITION, which needs a SCSI Response");
        // From here to EndDataIn nothing may throw but the receive itself (which AbandonDataIn covers): the task is
        // marked as being received into, and only EndDataIn or AbandonDataIn lift that mark.
        var task = _tasks.BeginDataIn(_connection, d, _parameters.DataPduInOrder, out var destination);
        if (length > 0)
        {
            try
            {
                // Straight from the transport into the caller's buffer (or its payload pipe), outside the session lock.
                var spliced = _transport.SplicedDataBytes;
                await _transport.ReceiveDataAsync(destination, token).ConfigureAwait(false);
                spliced = _transport.SplicedDataBytes - spliced;
                if (spliced != 0) Interlocked.Add(ref _session.Counters.DataInBytesSpliced, spliced);
            }
            catch
            {
                // The connection failed mid-segment: an end that came meanwhile can be carried out now.
                var abandoned = _tasks.AbandonDataIn(task);
                if (abandoned.Failure != null) _session.FailRetired(task, abandoned.Connection, abandoned.HoldsBuffer, abandoned.Failure);
                throw;
            }
        }
        Interlocked.Increment(ref _session.Counters.DataInPdus);
        if (d.HasStatus) AdvanceStatSN(d.StatSN);
        // GOOD with every byte and no residual needs no retry or transfer check: the task is retired in the same
        // acquisition of the session lock that counts the bytes and applies the window.
        var whole = d.HasStatus && status == ScsiStatus.Good && !d.Underflow && !d.Overflow;
        var end = _tasks.EndDataIn(task, length, d.ExpCmdSN, d.MaxCmdSN, retireIfWhole: whole);
        if (end.WakeWriter) _session.WakeWriter();
        if (end.EndedMeanwhile)
        {
            // Ended (by a reset or an abort) while its data was landing: re-queued already, or failed now.
            if (end.Failure != null) _session.FailRetired(task, end.Connection, end.HoldsBuffer, end.Failure);
            return;
        }
        if (!d.HasStatus) return;
        var result = new ScsiCommandResult(status, IscsiServiceResponse.CommandCompleted, task.TransferLength, d.ResidualCount, d.Underflow, d.Overflow, null);
        if (end.Retired)
        {
            _session.FinishRetired(task, end.Connection, end.HoldsBuffer, result);
            return;
        }
        if (ShortWithoutUnderflow(task, end.Received, d.Underflow, d.Overflow, status)) return;
        _session.CompleteTask(task, result);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask OnScsiResponseAsync(InboundPdu pdu, CancellationToken token)
    {
        var r = ScsiResponsePdu.Read(pdu.Header.Span);
        var data = await ReceiveDataAsync(pdu, token).ConfigureAwait(false);
        var task = _tasks.FindSent(r.InitiatorTaskTag, _connection, "SCSI Response");
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
        if (task.Direction == ScsiDataDirection.Read && ShortWithoutUnderflow(task, task.DataInBytes, r.Underflow, r.Overflow, (ScsiStatus)r.Status)) return;
        _session.CompleteTask(task, new ScsiCommandResult((ScsiStatus)r.Status, r.Response, task.TransferLength, r.ResidualCount, r.Underflow, r.Overflow, sense));
    }

    private void OnReadyToTransfer(InboundPdu pdu)
    {
        var r = ReadyToTransferPdu.Read(pdu.Header.Span);
        if (pdu.DataSegmentLength != 0) throw new IscsiProtocolException("R2T with a data segment");
        if (_transportPlacesData)
            throw new IscsiProtocolException($"R2T for ITT 0x{r.InitiatorTaskTag:x8} on a transport that places data itself");
        var task = _tasks.AcceptR2T(_connection, r, _parameters.MaxBurstLength, _parameters.MaxOutstandingR2T);
        Interlocked.Increment(ref _session.Counters.R2Ts);
        _connection.EnqueueControl(SendWork.ForR2T(task, r.TargetTransferTag, (int)r.BufferOffset, (int)r.DesiredDataTransferLength));
        _connection.SignalWriter();
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
            if (!_session.Controls.Complete(n.InitiatorTaskTag, ControlKind.Ping, pdu.Header.Span, data.Span))
                throw new IscsiProtocolException($"NOP-In for unknown ITT 0x{n.InitiatorTaskTag:x8}");
        }
        if (n.TargetTransferTag != BasicHeaderSegment.ReservedTag)
        {
            if (n.InitiatorTaskTag != BasicHeaderSegment.ReservedTag)
                throw new IscsiProtocolException("NOP-In with both ITT and TTT set");
            SessionLog.TargetPing(_logger, n.TargetTransferTag);
            _connection.EnqueueControl(SendWork.ForNopOutReply(n.Lun, n.TargetTransferTag, data.Length > 0 ? data.ToArray() : null));
            _connection.SignalWriter();
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
        if (kind == ControlKind.Logout && _session.State == IscsiSessionState.LoggingOut) _connection.MarkLoggedOut();
        if (!_session.Controls.Complete(itt, kind, pdu.Header.Span, data.Span))
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
        SessionLog.TargetRejected(_logger, opcode, itt, reject.Reason);
        if (opcode == IscsiOpcode.ScsiCommand && reject.Reason == RejectReason.WaitingForLogout)
            _session.HoldForReconnect(itt); // never executed: it goes out again on the next connection
        else if (opcode == IscsiOpcode.ScsiCommand || opcode == IscsiOpcode.DataOut)
            _session.FailTask(itt, error);
        else
            _session.Controls.Fail(itt, error);
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
                SessionLog.AsyncScsiEvent(_logger, LunAddress.Decode(m.Lun), sense?.ToString() ?? "no sense data");
                _session.RaiseAsyncEvent(LunAddress.Decode(m.Lun), sense);
                break;
            }
            case AsyncEvent.LogoutRequested:
                SessionLog.LogoutRequested(_logger, m.Parameter3);
                _connection.AnnounceEnd(new IscsiConnectionLostException("the target requested a logout"));
                _session.OnLogoutRequested(_connection, TimeSpan.FromSeconds(m.Parameter3));
                break;
            case AsyncEvent.ConnectionDropping:
            case AsyncEvent.SessionDropping:
                // Parameter2 is DefaultTime2Wait: no new login before it has passed. (Time2Retain, Parameter3, bounds
                // how long the target keeps tasks for ERL2 recovery; at ERL0 they are re-issued on the new session.)
                _session.DelayReconnect(TimeSpan.FromSeconds(m.Parameter2));
                throw new IscsiConnectionLostException($"target announced it is dropping the {(m.Event == AsyncEvent.SessionDropping ? "session" : "connection")} (Time2Wait {m.Parameter2} s)");
            case AsyncEvent.NegotiationRequested:
                SessionLog.RenegotiationRequested(_logger);
                _session.StartRenegotiation(data.Length > 0 ? TextKeyValues.Parse(data.Span) : []);
                break;
            case AsyncEvent.TaskTerminationRequested:
                SessionLog.TaskTerminationRequested(_logger, LunAddress.Decode(m.Lun));
                break;
            default:
                SessionLog.AsyncEventReceived(_logger, m.Event, m.VendorCode);
                break;
        }
    }

    /// <summary>
    /// A READ that ended GOOD having moved less than asked, without the target saying so (underflow), or more
    /// (overflow): the rest of the buffer holds no data of this command, so it fails instead of being served.
    /// </summary>
    private bool ShortWithoutUnderflow(ScsiTask task, int received, bool underflow, bool overflow, ScsiStatus status)
    {
        if (status != ScsiStatus.Good || _transportPlacesData || task.Direction != ScsiDataDirection.Read) return false;
        if (received >= task.TransferLength || underflow) return false;
        _session.FailTask(task.Itt, new ScsiCommandException(
            $"{task.CommandName} (a short transfer: {received} of {task.TransferLength} bytes without residual underflow{(overflow ? ", with overflow" : "")})", status, null));
        return true;
    }
}
