using System.Net;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;
using Microsoft.Extensions.Logging;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Transport.Iser;

/// <summary>
/// The rdma-core objects of one iSER connection: its RDMA-CM event channel and id, completion queue, queue pair and
/// the dispatcher that drains the CQ on the shared event loop. It watches the id's CM events after the connection
/// is established (a DISCONNECTED from the target fails the connection) and destroys everything in the only order
/// rdma-core accepts: stop dispatching, queue pair, CQ, id, channel.
/// </summary>
internal sealed class RdmaWire : IIserWire
{
    private readonly RdmaEventChannel _channel;
    private readonly RdmaCmId _id;
    private readonly CompletionQueue _cq;
    private readonly QueuePair _qp;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopWatching = new();
    private readonly TaskCompletionSource _disconnected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private CompletionDispatcher? _dispatcher;
    private IserConnection? _connection;
    private Task _watcher = Task.CompletedTask;
    private int _destroyed;

    public RdmaWire(RdmaEventChannel channel, RdmaCmId id, CompletionQueue cq, QueuePair qp, ILogger logger)
    {
        _channel = channel;
        _id = id;
        _cq = cq;
        _qp = qp;
        _logger = logger;
        RemoteEndPoint = id.RemoteEndPoint;
        LocalEndPoint = id.LocalEndPoint;
    }

    public EndPoint? LocalEndPoint { get; private set; }

    public EndPoint? RemoteEndPoint { get; }

    public uint QueuePairNumber => _qp.Number;

    /// <summary>Routes the CQ's completions to <paramref name="connection"/>'s descriptors, drained on the event loop.</summary>
    public void Attach(IserConnection connection)
    {
        _connection = connection;
        var dispatcher = new CompletionDispatcher(_cq, connection.WorkRequests);
        dispatcher.QueueFailed += e => connection.OnConnectionLost($"the completion queue failed: {e.Message}");
        dispatcher.HandlerFailed += (wc, e) => IserLog.CompletionHandlerFailed(_logger, e, wc.WorkRequestId, wc.Status);
        dispatcher.UnknownCompletion += wc => IserLog.UnknownCompletion(_logger, wc.WorkRequestId, wc.Status);
        _dispatcher = dispatcher;
    }

    public void StartDispatching() => _dispatcher!.Start(_channel.Loop);

    /// <summary>After the connection is established: fail it when RDMA-CM reports it gone.</summary>
    public void StartWatching()
    {
        LocalEndPoint = _id.LocalEndPoint;
        _watcher = WatchAsync();
    }

    private async Task WatchAsync()
    {
        try
        {
            while (true)
            {
                var e = await _id.ReadEventAsync(_stopWatching.Token).ConfigureAwait(false);
                switch (e.Type)
                {
                    case RdmaCmEventType.Disconnected:
                        _disconnected.TrySetResult();
                        _connection?.OnConnectionLost("the target closed the RDMA connection (RDMA_CM_EVENT_DISCONNECTED)");
                        break;
                    case RdmaCmEventType.DeviceRemoval:
                    case RdmaCmEventType.AddressChange:
                        _disconnected.TrySetResult();
                        _connection?.OnConnectionLost($"the RDMA connection is gone: {e}");
                        break;
                    case RdmaCmEventType.TimewaitExit:
                        _disconnected.TrySetResult();
                        return;
                    default:
                        IserLog.UnexpectedCmEvent(_logger, e);
                        break;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        catch (RdmaException e)
        {
            _connection?.OnConnectionLost($"the RDMA-CM event channel failed: {e.Message}");
        }
    }

    // A queue pair already destroyed by teardown answers like a broken one: the connection fails with an errno.
    public unsafe int PostSend(IbvSendWr* chain)
    {
        try
        {
            return _qp.TryPostSend(chain, out _);
        }
        catch (ObjectDisposedException)
        {
            return Errno.EIO;
        }
    }

    public unsafe int PostReceive(IbvRecvWr* chain)
    {
        try
        {
            return _qp.TryPostReceive(chain, out _);
        }
        catch (ObjectDisposedException)
        {
            return Errno.EIO;
        }
    }

    public void Disconnect()
    {
        if (Volatile.Read(ref _destroyed) != 0) return;
        _id.Disconnect();
    }

    public async ValueTask DestroyAsync()
    {
        if (Interlocked.Exchange(ref _destroyed, 1) != 0) return;
        // Our own disconnect is confirmed by DISCONNECTED; do not keep the target waiting on a half-closed QP for long.
        if (_watcher.IsCompleted == false)
            await Task.WhenAny(_disconnected.Task, Task.Delay(TimeSpan.FromSeconds(1))).ConfigureAwait(false);
        _stopWatching.Cancel();
        _dispatcher?.Dispose();
        _qp.Dispose();
        _cq.Dispose();
        _id.Dispose();
        _channel.Dispose();
        try
        {
            await _watcher.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            IserLog.CmWatcherEnded(_logger, e.Message);
        }
        _stopWatching.Dispose();
    }
}
