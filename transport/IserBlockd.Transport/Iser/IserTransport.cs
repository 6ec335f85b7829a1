using System.Buffers;
using System.Net;
using System.Net.Sockets;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Interop;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace IserBlockd.Transport.Iser;

/// <summary>Settings of the iSER transport.</summary>
public sealed record IserTransportOptions
{
    /// <summary>Queue depths and segment lengths of each connection.</summary>
    public IserConnectionOptions Connection { get; init; } = new();

    /// <summary>Timeout of RDMA-CM address and route resolution.</summary>
    public TimeSpan ResolveTimeout { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// iSCSI over RDMA (iSER, RFC 7145) through rdma-core: resolves the portal to an RDMA device, builds the connection's
/// queue pair on that device's shared protection domain (<see cref="IserDeviceRegistry"/>), posts its receive
/// buffers, and connects with the iSER CM private data (no Hello message: Linux targets reject it on IB/RoCE).
/// Login and everything after it then run over <see cref="IserConnection"/>.
/// <para>
/// Zero copy between the NBD side and the wire: rent task buffers with <see cref="RentAsync"/> (the registered pool
/// of the device the session uses); other memory still works, through a bounce buffer.
/// </para>
/// </summary>
public sealed class IserTransport : IIscsiTransport, IDisposable
{
    private readonly IserTransportOptions _options;
    private readonly IserDeviceRegistry _devices;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private volatile IserDevice? _device;
    /// <summary>The device's protection domain and pools are this session's own (<see cref="IserDeviceRegistry.OpenForSession"/>).</summary>
    private bool _ownsDevice;
    private readonly object _deviceGate = new();
    private bool _disposed;
    private volatile IserConnection? _lastConnection;

    public IserTransport(IserTransportOptions? options = null, IserDeviceRegistry? devices = null, ILoggerFactory? loggerFactory = null)
    {
        _options = options ?? new IserTransportOptions();
        _options.Connection.Validate();
        _devices = devices ?? IserDeviceRegistry.Shared;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger("IserBlockd.Transport.Iser");
    }

    public string Name => "iser";

    public IserTransportOptions Options => _options;

    /// <summary>The device of the latest connection (its pools serve the session's buffers); null before the first.</summary>
    public IserDevice? Device => _device;

    /// <summary>The latest connection (for its counters).</summary>
    public IserConnection? LastConnection => _lastConnection;

    /// <summary>
    /// Rents a task buffer from the registered pool of the session's device, for zero-copy I/O (the signature of
    /// blockdev's IBlockBufferProvider.RentAsync). Valid once a connection exists.
    /// </summary>
    public ValueTask<IMemoryOwner<byte>> RentAsync(int length, CancellationToken cancellationToken)
    {
        var device = _device ?? throw new InvalidOperationException("The iSER transport has no connection yet: rent buffers after login.");
        return device.DataBuffers.RentAsync(length, cancellationToken);
    }

    /// <summary>The largest buffer <see cref="RentAsync"/> hands out (the registered pool's largest size class).</summary>
    public int MaxBufferSize => _device?.DataBuffers.MaxBufferSize ?? _devices.Options.DataBuffers.SizeClasses.Max(c => c.BufferSize);

    public async ValueTask<IIscsiConnection> ConnectAsync(IscsiPortal portal, CancellationToken cancellationToken)
    {
        var addresses = await PortalAddresses.ResolveAsync(portal, cancellationToken).ConfigureAwait(false);
        RdmaException? last = null;
        foreach (var address in addresses)
        {
            try
            {
                return await ConnectAsync(new IPEndPoint(address, portal.Port), cancellationToken).ConfigureAwait(false);
            }
            catch (RdmaException e)
            {
                last = e;
                IserLog.EndpointFailed(_logger, new IPEndPoint(address, portal.Port), e.Message);
            }
        }
        throw new IscsiTransportException($"cannot connect over iSER to {portal.Address}: {Describe(last!)}", last);
    }

    private async Task<IserConnection> ConnectAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        var options = _options.Connection;
        var channel = RdmaEventChannel.Create();
        RdmaCmId? id = null;
        CompletionQueue? cq = null;
        QueuePair? qp = null;
        RdmaWire? wire = null;
        IserConnection? connection = null;
        try
        {
            id = channel.CreateId();
            IserLog.Resolving(_logger, endpoint);
            await id.ResolveAddressAsync(endpoint, null, _options.ResolveTimeout, cancellationToken).ConfigureAwait(false);
            await id.ResolveRouteAsync(_options.ResolveTimeout, cancellationToken).ConfigureAwait(false);
            IserLog.Resolved(_logger, endpoint, id.Device?.DeviceName);
            var context = id.Device ?? throw new RdmaException($"rdma_resolve_route({endpoint}) left the id without a device");
            var device = DeviceFor(context.DeviceName);
            var limits = context.QueryLimits();
            // With windows each command adds a bind (retired with its Send) and a local invalidate to the send queue.
            var windowRequests = device.UsesWindows ? 2 * options.WindowCount : 0;
            cq = CompletionQueue.Create(context, options.SendQueueDepth + options.ReceiveBufferCount + windowRequests + 16);
            qp = id.CreateQueuePair(device.ProtectionDomain!, cq, cq,
                new QueuePairCapacity(options.SendQueueDepth + windowRequests, options.ReceiveBufferCount));
            wire = new RdmaWire(channel, id, cq, qp, _logger);
            connection = new IserConnection(wire, device.DescriptorRegistrar, device, options, _logger);
            wire.Attach(connection);
            connection.PostAllReceives();
            wire.StartDispatching();

            // We answer the target's RDMA Reads of WRITE data (responder resources) and issue none ourselves.
            var parameters = new ConnectionParameters(
                ResponderResources: (byte)Math.Clamp(limits.MaxQpReadAtomic, 1, 255),
                InitiatorDepth: (byte)Math.Clamp(limits.MaxQpInitiatorReadAtomic, 0, 1),
                RetryCount: 7,
                RnrRetryCount: 7);
            IserLog.ReceivesPosted(_logger, options.ReceiveBufferCount, qp.Number);
            // With windows the target may invalidate a command's window itself with its SCSI Response (Send with Invalidate).
            var cmHeader = device.UsesWindows && options.RemoteInvalidation ? IserCmHeader.InitiatorWithWindows : IserCmHeader.Initiator;
            var accepted = await id.ConnectAsync(parameters, cmHeader.ToArray(), cancellationToken).ConfigureAwait(false);
            wire.StartWatching();
            IserLog.Connected(_logger, endpoint, wire.LocalEndPoint, device.Name, wire.QueuePairNumber, DescribePrivateData(accepted.Span), device.UsesWindows ? "through a memory window per command" : _ownsDevice ? "through the registrations' own keys, in a protection domain of this session's own (no memory windows)" : "through the registrations' own keys");
            _device = device;
            _lastConnection = connection;
            return connection;
        }
        catch
        {
            if (connection != null) await connection.DisposeAsync().ConfigureAwait(false);
            else if (wire != null) await wire.DestroyAsync().ConfigureAwait(false);
            else
            {
                qp?.Dispose();
                cq?.Dispose();
                id?.Dispose();
                channel.Dispose();
            }
            throw;
        }
    }

    /// <summary>
    /// The resources of <paramref name="deviceName"/> for this session: the device's shared ones where it has memory
    /// windows; otherwise this session's own, made at its first connection and kept for its reconnects (so buffers
    /// the NBD side holds stay usable), freed by <see cref="Dispose"/>.
    /// </summary>
    private IserDevice DeviceFor(string deviceName)
    {
        lock (_deviceGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_ownsDevice && _device is { } own && own.Name == deviceName) return own;
            var device = _devices.OpenForSession(deviceName, out var owned);
            if (_ownsDevice) _device?.Dispose(); // the route moved to another device: the old session-own pools go
            _ownsDevice = owned;
            _device = device;
            return device;
        }
    }

    /// <summary>Frees this session's own protection domain and pools, if it has them (its connections must be closed
    /// first: the session is over). Shared device resources stay with the registry.</summary>
    public void Dispose()
    {
        IserDevice? own;
        lock (_deviceGate)
        {
            if (_disposed) return;
            _disposed = true;
            own = _ownsDevice ? _device : null;
        }
        own?.Dispose();
    }

    /// <summary>The iSER CM header a target may return with its accept (tgt returns none; LIO isert does).</summary>
    internal static string DescribePrivateData(ReadOnlySpan<byte> privateData)
    {
        if (privateData.IsEmpty) return "none";
        if (privateData.IndexOfAnyExcept((byte)0) < 0) return $"{privateData.Length} zero bytes (no iSER CM header)";
        return IserCmHeader.TryRead(privateData, out var header) ? $"iSER CM header, flags {header.Flags}" : $"{privateData.Length} bytes";
    }

    internal static string Describe(RdmaException e) => e switch
    {
        RdmaConnectionRejectedException { RejectReason: 8 } =>
            "no iSER listener on that port (the target refused the RDMA connection: invalid service ID)",
        RdmaConnectionRejectedException r => $"the target rejected the RDMA connection ({RdmaCmEvent.DescribeStatus(RdmaCmEventType.Rejected, r.RejectReason)})",
        RdmaConnectionException { EventType: RdmaCmEventType.Unreachable } => "the target is unreachable over RDMA (no answer to the connect request)",
        _ => e.Message,
    };
}
