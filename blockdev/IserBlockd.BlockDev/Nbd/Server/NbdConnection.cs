using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Nbd.Transport;
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
    private int _inFlightWaitThreshold;
    private readonly LoopWakeSignal _inFlightBelowThreshold = new();

    private volatile bool _broken;
    private Timer? _shutdownDeadline;

    /// <param name="allocationContext">The client selected <c>base:allocation</c>: BLOCK_STATUS is allowed.</param>
    public NbdConnection(INbdTransport transport, NbdExport export, bool structuredReplies, bool allocationContext,
        NbdServerOptions options, ILogger logger)
    {
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
    }

    public INbdTransport Transport { get; }
    public NbdExport Export { get; }
    public string Peer { get; }
    public NbdTransmissionFlags Flags { get; }
    public bool IsBroken => _broken;

    /// <summary>What the disconnect log line says; the last writer wins.</summary>
    public string CloseReason { get; set; } = "client closed the connection";

    /// <summary>Serves requests until the client disconnects (or breaks the protocol, or
    /// <paramref name="cancellationToken"/> stops it), then waits for requests still at the device,
    /// delivers their replies and closes the transport.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        NbdLog.TransmissionStarted(_logger, Peer, Export, _structuredReplies, Flags);
        var writer = _writer.RunAsync();
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
        await WaitForInFlightBelowAsync(1).ConfigureAwait(false);
        _writer.Stop();
        await writer.ConfigureAwait(false);
        if (_shutdownDeadline != null) await _shutdownDeadline.DisposeAsync().ConfigureAwait(false);
        await Transport.DisposeAsync().ConfigureAwait(false);
        NbdLog.Disconnected(_logger, Peer, Export, CloseReason);
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
    }

    public void OnSendFailed(Exception e)
    {
        if (_broken) return;
        NbdLog.SendFailed(_logger, e, Peer);
        Break("sending failed: " + e.Message);
    }

    // ---------------------------------------------------------------- request objects and in-flight slots

    /// <summary>Completes once the request about to be read may have a slot (fewer than
    /// <see cref="NbdServerOptions.MaxRequestsInFlight"/> in flight).</summary>
    public ValueTask WaitForSlotAsync() => WaitForInFlightBelowAsync(_options.MaxRequestsInFlight);

    /// <summary>A request object for <paramref name="header"/>, counted in flight until <see cref="Release"/>.</summary>
    public NbdInFlightRequest Rent(in NbdRequest header)
    {
        Interlocked.Increment(ref _inFlight);
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
        return request;
    }

    /// <summary>Returns a request whose reply was sent (or dropped, or never due) and frees its slot.</summary>
    public void Release(NbdInFlightRequest request)
    {
        request.Reset();
        lock (_free)
        {
            if (_freeCount < _free.Length) _free[_freeCount++] = request;
        }
        var now = Interlocked.Decrement(ref _inFlight);
        var threshold = Volatile.Read(ref _inFlightWaitThreshold);
        if (threshold != 0 && now < threshold &&
            Interlocked.CompareExchange(ref _inFlightWaitThreshold, 0, threshold) == threshold)
            _inFlightBelowThreshold.Set();
    }

    /// <summary>Completes once fewer than <paramref name="threshold"/> requests are in flight. Only the
    /// reader (or the connection's shutdown, after the reader is done) waits here.</summary>
    private ValueTask WaitForInFlightBelowAsync(int threshold)
    {
        if (Volatile.Read(ref _inFlight) < threshold) return ValueTask.CompletedTask;
        Volatile.Write(ref _inFlightWaitThreshold, threshold);
        if (Volatile.Read(ref _inFlight) < threshold &&
            Interlocked.Exchange(ref _inFlightWaitThreshold, 0) != 0)
            return ValueTask.CompletedTask; // took our own wait back before anyone claimed it
        return _inFlightBelowThreshold.WaitAsync();
    }
}
