using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.Primitives.Polling;
using Microsoft.Extensions.Logging;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// Reads requests off the connection: parses every header in the receive buffer, validates it, rents its
/// payload buffer and receives a WRITE's payload into it, then starts the request without waiting for it.
/// </summary>
/// <remarks>What already arrived of a payload is copied out of the receive buffer; a large remainder is
/// received straight into the device's buffer. A refused WRITE's payload is read and dropped so the
/// stream stays in step.</remarks>
internal sealed class NbdRequestReader : IBurstOwner
{
    private static readonly ReadOnlyMemory<byte> NoBufferAvailable = "no buffer for the payload"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> ConnectionClosing = "the connection is closing"u8.ToArray();

    private readonly NbdConnection _connection;
    private readonly NbdRequestValidator _validator;
    private readonly NbdRequestRunner _runner;
    private readonly NbdReplyWriter _replies;
    private readonly IBlockDevice _device;
    private readonly NbdServerOptions _options;
    private readonly ILogger _logger;
    private readonly int _copyThreshold;

    private readonly byte[] _buffer;
    private int _start, _end;
    private bool _inBurst;

    /// <summary>The WRITE whose payload is arriving; when it was refused, the payload is dropped instead.</summary>
    private NbdInFlightRequest? _payloadOwner;
    private long _payloadReceived;

    public NbdRequestReader(NbdConnection connection, NbdRequestValidator validator, NbdRequestRunner runner,
        NbdReplyWriter replies, NbdServerOptions options, ILogger logger)
    {
        _connection = connection;
        _validator = validator;
        _runner = runner;
        _replies = replies;
        _device = connection.Export.Device;
        _options = options;
        _logger = logger;
        _copyThreshold = options.CopyThreshold;
        _buffer = GC.AllocateUninitializedArray<byte>(options.ReceiveBufferSize, pinned: true);
    }

    private int Buffered => _end - _start;

    /// <summary>Reads and starts requests until the client disconnects, breaks the protocol, or the
    /// connection stops receiving. Everything received passes through the one await on the transport
    /// below, so the loop's state machine is allocated once per connection, not per receive.</summary>
    public async Task RunAsync()
    {
        BeginBurst();
        try
        {
            await ReadRequestsAsync().ConfigureAwait(false);
        }
        finally
        {
            EndBurst();
        }
    }

    private async Task ReadRequestsAsync()
    {
        while (true)
        {
            Memory<byte> target;
            if (_payloadOwner != null)
            {
                if (TakePayloadFromBuffer()) continue;
                target = PayloadTarget();
            }
            else if (Buffered >= NbdRequest.Size)
            {
                if (!await HandleRequestAsync().ConfigureAwait(false)) return;
                continue;
            }
            else
            {
                target = FreeReceiveSpace();
            }

            EndBurst();
            // The one request in flight went to the device: its answer is what comes next.
            if (_payloadOwner == null && _connection.InFlight == 1) _connection.BeforeIdle(LowDepthWait.Answer);
            int received;
            try
            {
                received = await _connection.Transport.ReceiveAsync(target).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
            {
                if (!_connection.IsBroken) _connection.CloseReason = "connection lost: " + e.Message;
                received = 0;
            }
            BeginBurst();
            if (received <= 0)
            {
                OnEndOfStream();
                return;
            }
            if (_payloadOwner != null && !target.Span.Overlaps(_buffer)) _payloadReceived += received;
            else _end += received;
        }
    }

    /// <summary>Parses and starts the request at the head of the buffer; false ends the connection.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> HandleRequestAsync()
    {
        if (!NbdRequest.TryRead(_buffer.AsSpan(_start, NbdRequest.Size), out var header))
        {
            var magic = BinaryPrimitives.ReadUInt32BigEndian(_buffer.AsSpan(_start));
            NbdLog.BadRequestMagic(_logger, _connection.Peer, magic);
            _connection.Break("protocol violation (bad request magic)");
            return false;
        }
        _start += NbdRequest.Size;
        if (header.Command == NbdCommand.Disconnect)
        {
            _connection.CloseReason = "client sent NBD_CMD_DISC";
            return false;
        }

        var error = _validator.Validate(in header, out var reason);
        var payload = error == 0 && header.Command is NbdCommand.Read or NbdCommand.Write ? header.Length : 0u;
        // Over the connection's caps: stop reading the socket until replies have left (back-pressure).
        await OutsideBurst.Of(this, _connection.WaitForRoomAsync(payload));
        var request = _connection.Rent(header, payload);

        if (payload > 0)
        {
            if (_connection.IsClient && !await ChargeBudgetsAsync(request).ConfigureAwait(false))
            {
                error = BlockError.Shutdown;
                reason = ConnectionClosing;
            }
            else
            {
                try
                {
                    // A dry pool waits outside the burst: replies (and their buffers) go meanwhile.
                    request.Buffer = await OutsideBurst.Of(this, RentBuffer((int)payload));
                }
                catch (Exception e)
                {
                    // A provider that cannot serve this size (or fails) costs this request, not the connection.
                    NbdLog.DeviceFailure(_logger, e, _connection.Export, header.Command, (long)header.Offset, header.Length);
                    error = BlockError.OutOfMemory;
                    reason = NoBufferAvailable;
                }
            }
        }

        if (error != 0) return Refuse(request, in header, error, reason);
        if (header.Command == NbdCommand.Write && header.Length > 0)
        {
            _payloadOwner = request;
            _payloadReceived = 0;
            return true;
        }
        _runner.Start(request);
        if (header.Command == NbdCommand.Read && header.Length > _copyThreshold)
        {
            // Start sending a large read at once rather than after the whole burst: the client
            // consumes this payload while the next request is being read.
            EndBurst();
            BeginBurst();
        }
        return true;
    }

    private bool Refuse(NbdInFlightRequest request, in NbdRequest header, BlockError error, ReadOnlyMemory<byte> reason)
    {
        if (_logger.IsEnabled(LogLevel.Debug))
            NbdLog.RequestRefused(_logger, _connection.Peer, header.Command, header.Offset, header.Length, header.Flags, error,
                System.Text.Encoding.UTF8.GetString(reason.Span));
        request.Fail(error, reason);
        if (header.Command != NbdCommand.Write || header.Length == 0)
        {
            _runner.Refuse(request);
            return true;
        }
        // The payload follows regardless; skip it to stay in step, unless it is absurd.
        if (header.Length > _options.MaxDiscardedPayload)
        {
            NbdLog.OversizedPayload(_logger, _connection.Peer, header.Length, _options.MaxDiscardedPayload);
            _connection.Release(request);
            _connection.Break("protocol violation (oversized WRITE payload)");
            return false;
        }
        _payloadOwner = request;
        _payloadReceived = 0;
        return true;
    }

    /// <summary>Moves what the receive buffer holds of the current payload into place (or drops it); true
    /// when the payload is complete and its request has started (or, refused, been answered).</summary>
    private bool TakePayloadFromBuffer()
    {
        var request = _payloadOwner!;
        var take = (int)Math.Min(Buffered, request.Length - _payloadReceived);
        if (request.Error == 0)
            _buffer.AsSpan(_start, take).CopyTo(request.Buffer!.Memory.Span[(int)_payloadReceived..]);
        _start += take;
        _payloadReceived += take;
        if (_payloadReceived < request.Length) return false;
        _payloadOwner = null;
        if (request.Error == 0) _runner.Start(request);
        else _runner.Refuse(request);
        return true;
    }

    /// <summary>Where the rest of the current payload is received: straight into the device's buffer
    /// when it is large; through the receive buffer when small (the next requests likely come along)
    /// or when it is being dropped.</summary>
    private Memory<byte> PayloadTarget()
    {
        var request = _payloadOwner!;
        var remaining = request.Length - _payloadReceived;
        if (request.Error != 0)
        {
            _start = _end = 0;
            return _buffer;
        }
        if (remaining <= _copyThreshold) return FreeReceiveSpace();
        return request.Buffer!.Memory[(int)_payloadReceived..];
    }

    /// <summary>Moves unparsed bytes to the front so the free space is in one piece and each receive
    /// can take in a whole burst of requests.</summary>
    private Memory<byte> FreeReceiveSpace()
    {
        if (_start == _end)
        {
            _start = _end = 0;
        }
        else if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, Buffered);
            _end -= _start;
            _start = 0;
        }
        return _buffer.AsMemory(_end);
    }

    private void OnEndOfStream()
    {
        if (_payloadOwner is { } request)
        {
            if (request.Error == 0)
                NbdLog.VanishedMidWrite(_logger, _connection.Peer, _payloadReceived + Buffered, request.Length, request.Offset);
            _connection.CloseReason = "client closed the connection in the middle of a WRITE payload";
            _payloadOwner = null;
            _connection.Release(request); // never answered
        }
        else if (Buffered != 0)
        {
            _connection.CloseReason = "client closed the connection in the middle of a request header";
        }
    }

    /// <summary>Charges a client's request to its export's budget, then to the budget all clients of its pool share, waiting
    /// (without reading the socket) while either is spent. False when the connection broke meanwhile.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ChargeBudgetsAsync(NbdInFlightRequest request)
    {
        var budgets = _connection.ClientBudget;
        var export = _connection.Export.Budget;
        try
        {
            await OutsideBurst.Of(this, export.AcquireAsync(request.PayloadBytes, _connection.Breaking));
            request.ExportBudgetCharge = request.PayloadBytes;
            if (budgets == null) return true;
            await OutsideBurst.Of(this, budgets.AcquireAsync(request.PayloadBytes, _connection.Breaking));
            request.ClientBudgetCharge = request.PayloadBytes;
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The requests of one receive are being started: their replies wait for each other, and so do the
    /// commands the device sends for them (<see cref="IBlockDevice.BeginBurst"/>). Ended before every receive and every
    /// wait (<see cref="OutsideBurst{T}"/>). Both ends may be called again when already done.</summary>
    public void BeginBurst()
    {
        _replies.HoldForBatch();
        if (_inBurst) return;
        _inBurst = true;
        _device.BeginBurst();
    }

    public void EndBurst()
    {
        _replies.EndBatch();
        if (!_inBurst) return;
        _inBurst = false;
        _device.EndBurst();
    }

    private ValueTask<IMemoryOwner<byte>> RentBuffer(int length)
    {
        try
        {
            return _device.Buffers.RentAsync(length, CancellationToken.None);
        }
        catch (Exception e)
        {
            return ValueTask.FromException<IMemoryOwner<byte>>(e);
        }
    }
}
