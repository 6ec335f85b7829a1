using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Nbd.Streams;
using IserBlockd.Primitives.Polling;
using Microsoft.Extensions.Logging;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// The transmission phase of one NBD connection, in three parts: <see cref="NbdRequestReader"/> reads
/// and validates requests, <see cref="NbdRequestRunner"/> runs them on the device (many at once, each
/// answered when it finishes), <see cref="NbdReplyWriter"/> sends the replies. This class owns what they
/// share: the transport, the pool of request objects, the count of requests in flight, and why the
/// connection ended.
/// </summary>
/// <remarks>Nothing allocates per request: request objects are pooled here, payloads are the device's
/// pooled buffers, and every await is on a pooled ValueTask or inside a long-lived loop.</remarks>
internal sealed class NbdConnection
{
    private readonly NbdServerOptions _options;
    private readonly ILogger _logger;
    private readonly bool _structuredReplies;
    private readonly NbdRequestReader _reader;
    private readonly NbdReplyWriter _writer;
    private readonly Action<NbdInFlightRequest> _enqueueReply;

    private readonly NbdInFlightRequest[] _free;
    private int _freeCount;
    private int _inFlight;
    private long _bytesInFlight;
    private readonly long _maxBytesInFlight;
    /// <summary>The reader's wait: fewer than this many requests in flight (0: nobody waits)...</summary>
    private int _waitRequests;
    /// <summary>... and room for this many more payload bytes.</summary>
    private long _waitBytes;
    private readonly LoopWakeSignal _roomForReader = new();

    private volatile bool _broken;
    private readonly CancellationTokenSource _breaking = new();
    private Timer? _shutdownDeadline;
    private Timer? _sendWatch;
    /// <summary>Environment.TickCount64 when the send in progress began; 0 while none is.</summary>
    private long _sendSince;
    /// <summary>1 while <see cref="_sendWatch"/> is due to fire (at the deadline of a send that was pending when armed).</summary>
    private int _sendWatchArmed;
    private readonly long _sendTimeoutMs;
    /// <summary>This connection's socket among those polled at queue depth one (null: not polled, e.g. TLS).</summary>
    private readonly IDisposable? _pollWatch;

    /// <param name="allocationContext">The client selected <c>base:allocation</c>: BLOCK_STATUS is allowed.</param>
    /// <param name="client">A client of a listener (counted in its export's and the servers' budgets), not a
    /// kernel socket.</param>
    public NbdConnection(INbdTransport transport, NbdExport export, bool structuredReplies, bool allocationContext,
        NbdServerOptions options, ILogger logger, bool client = false)
    {
        IsClient = client;
        // A client's share comes from the pool its export's device rents from; the kernel's sockets keep the
        // server's limit (they are the devices the pool's other half is kept for).
        var shares = client ? export.Device.Buffers.Shares : null;
        ClientBudget = shares?.Clients;
        _maxBytesInFlight = shares != null ? Math.Min(options.MaxBytesInFlight, shares.PerConnection) : options.MaxBytesInFlight;
        Transport = transport;
        Export = export;
        Peer = transport.RemoteDescription;
        _options = options;
        _logger = logger;
        _structuredReplies = structuredReplies;
        Flags = export.GetTransmissionFlags(structuredReplies);
        _writer = new NbdReplyWriter(this, structuredReplies, options);
        _enqueueReply = _writer.Enqueue;
        var runner = new NbdRequestRunner(export, _writer, logger);
        _reader = new NbdRequestReader(this, new NbdRequestValidator(export, Flags, structuredReplies, allocationContext), runner, _writer, options, logger);
        _free = new NbdInFlightRequest[options.MaxRequestsInFlight];
        _sendTimeoutMs = options.SendTimeout == Timeout.InfiniteTimeSpan ? 0 : Math.Max(1, (long)options.SendTimeout.TotalMilliseconds);
        if (transport is Streams.SocketTransport socket) _pollWatch = options.LowDepthPoller.Watch(socket.Socket.SafeHandle);
    }

    public INbdTransport Transport { get; }
    public NbdExport Export { get; }
    public string Peer { get; }
    public NbdTransmissionFlags Flags { get; }
    public bool IsBroken => _broken;
    public bool IsClient { get; }
    /// <summary>Requests read and not yet released.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);
    public NbdServerOptions Options => _options;

    /// <summary>The I/O thread is about to wait for <paramref name="wait"/> on this connection's behalf: at queue depth
    /// one it polls a while first (<see cref="NbdServerOptions.LowDepthPoller"/>).</summary>
    public void BeforeIdle(LowDepthWait wait)
    {
        if (_pollWatch != null) _options.LowDepthPoller.BeforeIdle(wait);
    }

    /// <summary>What all network clients on this export's buffer pool may hold together (null for a kernel socket,
    /// or a pool without <see cref="IBlockBufferProvider.Shares"/>).</summary>
    public Buffers.ByteBudget? ClientBudget { get; }

    /// <summary>Cancelled by <see cref="Break"/>: the reader's waits for budget end with it.</summary>
    public CancellationToken Breaking => _breaking.Token;

    /// <summary>What the disconnect log line says; the last writer wins.</summary>
    public string CloseReason { get; set; } = "client closed the connection";

    /// <summary>Serves requests until the client disconnects (or breaks the protocol, or
    /// <paramref name="cancellationToken"/> stops it), then waits for requests still at the device,
    /// delivers their replies and closes the transport.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        NbdLog.TransmissionStarted(_logger, Peer, Export, _structuredReplies, Flags);
        var writer = _writer.RunAsync();
        if (_sendTimeoutMs != 0)
            _sendWatch = new Timer(static state => ((NbdConnection)state!).CheckSendProgress(), this, Timeout.Infinite, Timeout.Infinite);
        // Stopping is a shutdown of our receive side: the reader sees end-of-stream and drains normally.
        using (cancellationToken.UnsafeRegister(static state => ((NbdConnection)state!).StopReceiving(), this))
        {
            try
            {
                await _reader.RunAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                NbdLog.ConnectionFailed(_logger, e, Peer);
                Break("internal error: " + e.Message);
            }
        }
        _writer.EndBatch();
        await WaitForAsync(1, 0).ConfigureAwait(false);
        _writer.Stop();
        await writer.ConfigureAwait(false);
        if (_shutdownDeadline != null) await _shutdownDeadline.DisposeAsync().ConfigureAwait(false);
        if (_sendWatch != null) await _sendWatch.DisposeAsync().ConfigureAwait(false);
        NbdLog.Disconnected(_logger, Peer, Export, CloseReason);
        _pollWatch?.Dispose();
        // Payloads the client has not read are still its socket's pages: they (and the socket, to see when they are
        // read) are kept until it reads them or closes, without holding up the end of the connection.
        var closing = _writer.Lent.DrainThenAsync(Transport.DisposeAsync);
        if (closing.IsCompleted) await closing.ConfigureAwait(false);
        else _writer.Lent.AbandonAll();
    }

    private void StopReceiving()
    {
        CloseReason = "server shutting down";
        Transport.ShutdownReceive();
        // Replies that cannot be delivered in time (the client stopped reading) are given up.
        _shutdownDeadline = new Timer(static state => ((NbdConnection)state!).Break(null), this, _options.ShutdownTimeout, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Hard disconnect: pending sends fail, replies not yet sent are dropped.</summary>
    public void Break(string? reason)
    {
        if (reason != null) CloseReason = reason;
        _broken = true;
        Transport.Abort();
        try { _breaking.Cancel(); }
        catch (ObjectDisposedException) { }
    }

    // ---------------------------------------------------------------- send timeout

    // Each send has its own deadline, its start plus the timeout. One one-shot timer serves them all: armed at the
    // deadline of the send that finds it idle; when it fires it cuts the connection off if that send (or a later
    // one) is overdue, re-arms for the deadline of a later send still pending, or goes idle. A busy connection so
    // re-arms it about once per timeout, not once per send.

    /// <summary>The writer is about to send (a gathered batch of replies, or one large payload).</summary>
    public void OnSendStarting()
    {
        var now = Math.Max(1, Environment.TickCount64);
        Interlocked.Exchange(ref _sendSince, now); // a full fence: the watch's idle check below sees it, or the watch does
        if (_sendWatch != null && Volatile.Read(ref _sendWatchArmed) == 0) ArmSendWatch(now);
    }

    /// <summary>The send finished (or failed).</summary>
    public void OnSendFinished() => Volatile.Write(ref _sendSince, 0);

    private void ArmSendWatch(long since)
    {
        if (Interlocked.CompareExchange(ref _sendWatchArmed, 1, 0) != 0) return;
        var due = Math.Max(1, since + _sendTimeoutMs - Environment.TickCount64);
        try { _sendWatch!.Change(due, Timeout.Infinite); }
        catch (ObjectDisposedException) { }
    }

    /// <summary>A send pending for longer than the send timeout: the client stopped reading. Cutting it off fails
    /// the send, drops the replies still queued and so returns every buffer it held.</summary>
    private void CheckSendProgress()
    {
        Interlocked.Exchange(ref _sendWatchArmed, 0);
        var since = Volatile.Read(ref _sendSince);
        if (since == 0 || _broken) return;
        if (Environment.TickCount64 - since < _sendTimeoutMs)
        {
            ArmSendWatch(since); // a later send than the one it was armed for: wait for its own deadline
            return;
        }
        NbdLog.SendTimedOut(_logger, Peer, Export, _options.SendTimeout.TotalSeconds);
        Break($"no reply taken up for {_options.SendTimeout.TotalSeconds:0.#} s (send timeout)");
    }

    public void OnSendFailed(Exception e)
    {
        if (_broken) return;
        NbdLog.SendFailed(_logger, e, Peer);
        Break("sending failed: " + e.Message);
    }

    // ---------------------------------------------------------------- request objects and in-flight slots

    /// <summary>Completes once a request carrying <paramref name="payloadBytes"/> of READ/WRITE payload may be
    /// read on: fewer than <see cref="NbdServerOptions.MaxRequestsInFlight"/> requests in flight and the payload
    /// within this connection's byte limit (or nothing else holding buffers).</summary>
    public ValueTask WaitForRoomAsync(long payloadBytes) => WaitForAsync(_options.MaxRequestsInFlight, payloadBytes);

    /// <summary>A request object for <paramref name="header"/>, counted in flight (with its payload bytes) until
    /// <see cref="Release"/>.</summary>
    public NbdInFlightRequest Rent(in NbdRequest header, long payloadBytes)
    {
        Interlocked.Increment(ref _inFlight);
        _options.LowDepthPoller.Started(); // every connection's requests count, watched or not
        if (payloadBytes != 0) Interlocked.Add(ref _bytesInFlight, payloadBytes);
        NbdInFlightRequest? request = null;
        lock (_free)
        {
            if (_freeCount > 0)
            {
                request = _free[--_freeCount];
                _free[_freeCount] = null!;
            }
        }
        request ??= new NbdInFlightRequest(_enqueueReply);
        request.Initialize(in header);
        request.PayloadBytes = payloadBytes;
        return request;
    }

    /// <summary>Returns a request whose reply was sent (or dropped, or never due) and frees its slot: its buffer
    /// goes back to the pool first, then the budgets it was charged, then the reader may go on.</summary>
    public void Release(NbdInFlightRequest request)
    {
        var payloadBytes = request.PayloadBytes;
        var exportCharge = request.ExportBudgetCharge;
        var clientCharge = request.ClientBudgetCharge;
        request.Reset();
        lock (_free)
        {
            if (_freeCount < _free.Length) _free[_freeCount++] = request;
        }
        Interlocked.Decrement(ref _inFlight);
        _options.LowDepthPoller.Finished();
        ReleaseCharges(payloadBytes, exportCharge, clientCharge);
    }

    /// <summary>Frees the slot of a request whose READ payload left by page reference and is not read yet: the
    /// buffer, and the bytes it is charged here and in the budgets, stay held by the returned loan until
    /// <see cref="ReturnLoan"/>.</summary>
    public LentPayload ReleaseLending(NbdInFlightRequest request, long end)
    {
        var loan = new LentPayload((Buffers.PooledBlockBuffer)request.Buffer!, request.PayloadBytes, request.ExportBudgetCharge, request.ClientBudgetCharge, end);
        request.Buffer = null;
        request.PayloadBytes = request.ExportBudgetCharge = request.ClientBudgetCharge = 0;
        Release(request);
        return loan;
    }

    /// <summary>The client has read a lent payload: its buffer goes back to the pool, then its charges.</summary>
    public void ReturnLoan(in LentPayload loan)
    {
        ((IDisposable)loan.Buffer).Dispose();
        ReturnCharges(loan);
    }

    /// <summary>A loan's charges, released before its buffer comes back (<see cref="LentReplyPages.AbandonAll"/>).</summary>
    public void ReturnCharges(in LentPayload loan) => ReleaseCharges(loan.PayloadBytes, loan.ExportCharge, loan.ClientCharge);

    private void ReleaseCharges(long payloadBytes, long exportCharge, long clientCharge)
    {
        if (clientCharge != 0) ClientBudget!.Release(clientCharge);
        if (exportCharge != 0) Export.Budget.Release(exportCharge);
        if (payloadBytes != 0) Interlocked.Add(ref _bytesInFlight, -payloadBytes);
        var requests = Volatile.Read(ref _waitRequests);
        if (requests != 0 && HasRoom(requests, Volatile.Read(ref _waitBytes)) &&
            Interlocked.CompareExchange(ref _waitRequests, 0, requests) == requests)
            _roomForReader.Set();
    }

    private bool HasRoom(int requests, long payloadBytes)
    {
        if (Volatile.Read(ref _inFlight) >= requests) return false;
        if (payloadBytes == 0) return true;
        var held = Volatile.Read(ref _bytesInFlight);
        return held == 0 || held + payloadBytes <= _maxBytesInFlight;
    }

    /// <summary>Completes once fewer than <paramref name="requests"/> are in flight and <paramref name="payloadBytes"/>
    /// more fit. Only the reader (or the connection's shutdown, after the reader is done) waits here.</summary>
    private ValueTask WaitForAsync(int requests, long payloadBytes)
    {
        if (HasRoom(requests, payloadBytes)) return ValueTask.CompletedTask;
        // Payloads the client has read since the writer last looked may be what holds the room.
        if (_writer.Lent.Any)
        {
            if (_writer.Lent.Reclaim() && HasRoom(requests, payloadBytes)) return ValueTask.CompletedTask;
            _writer.Lent.ReclaimLater(); // and until the client has read them, look again on a timer
        }
        Volatile.Write(ref _waitBytes, payloadBytes);
        Volatile.Write(ref _waitRequests, requests);
        if (HasRoom(requests, payloadBytes) && Interlocked.Exchange(ref _waitRequests, 0) != 0)
            return ValueTask.CompletedTask; // took our own wait back before anyone claimed it
        return _roomForReader.WaitAsync();
    }
}
