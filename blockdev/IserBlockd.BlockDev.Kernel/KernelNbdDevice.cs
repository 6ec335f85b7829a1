using System.Net.Sockets;
using IserBlockd.BlockDev.Kernel.Ioctl;
using IserBlockd.BlockDev.Kernel.Nbd;
using IserBlockd.BlockDev.Kernel.Netlink;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel;

/// <summary>
/// A kernel /dev/nbdN attached by this process, and the connections we serve for it.
/// <see cref="DetachAsync"/> disconnects it; <see cref="ReleaseAsync"/> stops serving but leaves it
/// configured, so that a later process can <see cref="KernelNbd.ReattachAsync"/> it (netlink only).
/// Disposing detaches unless the device was released.
/// </summary>
public sealed class KernelNbdDevice : IAsyncDisposable
{
    private readonly KernelAttachRequest _request;
    private readonly Func<Socket, CancellationToken, Task> _serve;
    private readonly IoctlAttachment? _ioctl;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly List<(Socket Socket, Task Task)> _connections = [];
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private NbdLinkDeadMonitor? _linkMonitor;
    private int _replacing;
    private int _state;   // 0 attached, 1 detached, 2 released

    internal KernelNbdDevice(uint index, KernelAttachMethod method, KernelAttachRequest request,
        Func<Socket, CancellationToken, Task> serve, IoctlAttachment? ioctl)
    {
        Index = index;
        Method = method;
        _request = request;
        _serve = serve;
        _ioctl = ioctl;
    }

    public uint Index { get; }

    public string DevicePath => "/dev/nbd" + Index;

    public KernelAttachMethod Method { get; }

    /// <summary>Connections currently served (the kernel may have dropped some; see <see cref="ReconfigureAsync"/>).</summary>
    public int LiveConnections => Volatile.Read(ref _live);

    private int _live;

    /// <summary>Completes when every connection served so far has ended.</summary>
    public Task Completion
    {
        get { lock (_lock) return Task.WhenAll(_connections.Select(c => c.Task)); }
    }

    /// <summary>Completes when this process no longer serves the device: it was detached or released, or
    /// every connection ended and none is being replaced (someone else disconnected it).</summary>
    public Task Ended => _ended.Task;

    /// <summary>Connections handed to the kernel with NBD_CMD_RECONFIGURE after it reported them dead.</summary>
    public int ReplacedConnections => Volatile.Read(ref _replacedConnections);

    private int _replacedConnections;

    /// <summary>Raised (on a worker thread) when replacing a dead connection failed; the device keeps
    /// waiting for one until its dead-connection timeout.</summary>
    public event Action<Exception>? ReplacementFailed;

    /// <summary>Raised (on a worker thread) with the number of dead connections just replaced.</summary>
    public event Action<int>? ConnectionsReplaced;

    /// <summary>Hands new sockets to the kernel for every connection that ended (NBD_CMD_RECONFIGURE),
    /// e.g. after the kernel timed a connection out. Netlink only.</summary>
    public Task ReconfigureAsync(CancellationToken cancellationToken = default)
    {
        RequireNetlink("NBD_CMD_RECONFIGURE");
        return Task.Run(() =>
        {
            using var client = NbdNetlinkClient.Open();
            HandOverSockets(client, _request.Connections - LiveConnections, cancellationToken);
        }, cancellationToken);
    }

    /// <summary>Gives the live device a new size (the LUN grew or shrank): NBD_CMD_RECONFIGURE with the size alone; the
    /// kernel updates the disk's capacity and tells udev, so that an online resize2fs can follow. Netlink only.</summary>
    public Task ResizeAsync(long sizeBytes, CancellationToken cancellationToken = default)
    {
        RequireNetlink("NBD_CMD_RECONFIGURE");
        return Task.Run(() =>
        {
            using var client = NbdNetlinkClient.Open();
            try
            {
                client.Reconfigure(new NbdDeviceConfiguration { Index = Index, SizeBytes = (ulong)sizeBytes, BackendIdentifier = _request.BackendIdentifier }, []);
            }
            catch (NetlinkException e)
            {
                throw new KernelNbdException(e.Message, e.Errno, e);
            }
        }, cancellationToken);
    }

    /// <summary>The kernel's view of this device (NBD_CMD_STATUS), null if it no longer exists.</summary>
    public NbdDeviceStatus? Status()
    {
        RequireNetlink("NBD_CMD_STATUS");
        var list = KernelNbd.Status(Index);
        return list.Count > 0 ? list[0] : null;
    }

    /// <summary>Disconnects the device (the kernel sends NBD_CMD_DISC on each connection and fails what is
    /// still queued), then waits for our connections to end.</summary>
    public async Task DetachAsync(TimeSpan? timeout = null)
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0) return;
        try
        {
            if (_ioctl != null)
                await _ioctl.DisconnectAsync(timeout ?? TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            else
                await Task.Run(() =>
                {
                    using var client = NbdNetlinkClient.Open();
                    try
                    {
                        client.Disconnect(Index);
                    }
                    catch (NetlinkException e) when (e.Errno == 22 && client.Status(Index) is not [{ Connected: true }])
                    {
                        // EINVAL for a device that is gone or unconfigured: it is already detached
                    }
                }).ConfigureAwait(false);
            await WaitForConnectionsAsync(timeout ?? TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        finally
        {
            StopServing();
        }
    }

    /// <summary>Stops serving without disconnecting: the kernel marks the connections dead and holds
    /// requests for the dead-connection timeout, waiting for a RECONFIGURE from a new process.</summary>
    /// <remarks>The connections first stop reading and answer the requests they have started: a request the kernel
    /// sent that is never answered stays in flight on the dead socket until the kernel's request timeout requeues
    /// it, while one sent after the socket closed fails to send and waits, requeued, for the next process.</remarks>
    public async Task ReleaseAsync()
    {
        RequireNetlink("leaving a device for re-attach");
        if (Interlocked.CompareExchange(ref _state, 2, 0) != 0) return;
        _stop.Cancel();
        await WaitForConnectionsAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        StopServing();
    }

    public async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _state) == 0) await DetachAsync().ConfigureAwait(false);
        _linkMonitor?.Dispose();
        _stop.Dispose();
    }

    /// <summary>Starts serving one connection whose other end the kernel holds.</summary>
    internal void Serve(Socket socket)
    {
        Interlocked.Increment(ref _live);
        var task = Task.Run(async () =>
        {
            try { await _serve(socket, _stop.Token).ConfigureAwait(false); }
            finally
            {
                socket.Dispose();
                Interlocked.Decrement(ref _live);
                OnConnectionEnded();
            }
        });
        lock (_lock)
        {
            _connections.RemoveAll(c => c.Task.IsCompleted);
            _connections.Add((socket, task));
        }
    }

    /// <summary>
    /// NBD_CMD_RECONFIGURE with <paramref name="count"/> new sockets. The kernel only takes a socket in
    /// place of a connection it has already marked dead, and silently ignores the rest; a socket it did
    /// not take shows end-of-file at our end as soon as we close its kernel end, so we try again for those
    /// (the kernel may not yet have noticed that the old server went away).
    /// </summary>
    internal void HandOverSockets(NbdNetlinkClient client, int count, CancellationToken cancellationToken)
    {
        var configuration = new NbdDeviceConfiguration
        {
            Index = Index,
            TimeoutSeconds = (ulong)Math.Ceiling(_request.IoTimeout.TotalSeconds),
            DeadConnectionTimeoutSeconds = (ulong)Math.Ceiling(_request.DeadConnectionTimeout.TotalSeconds),
            BackendIdentifier = _request.BackendIdentifier,
        };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (count > 0)
        {
            var pairs = Enumerable.Range(0, count).Select(_ => SocketPair.CreateForKernel()).ToList();
            try
            {
                client.Reconfigure(configuration, pairs.Select(p => p.KernelEnd.Fd).ToArray());
            }
            catch (NetlinkException e)
            {
                foreach (var p in pairs) { p.KernelEnd.Dispose(); p.ServerEnd.Dispose(); }
                throw new KernelNbdException(e.Message, e.Errno, e);
            }
            foreach (var p in pairs) p.KernelEnd.Dispose();
            foreach (var (_, server) in pairs)
            {
                if (server.Poll(0, SelectMode.SelectRead) && server.Available == 0)
                {
                    server.Dispose();   // not taken: end-of-file
                    continue;
                }
                Serve(server);
                count--;
            }
            if (count == 0) break;
            if (DateTime.UtcNow > deadline)
                throw new KernelNbdException($"{DevicePath}: the kernel took no socket for {count} connection(s) within 10 s " +
                    "(its connections are still alive, or it was disconnected)");
            cancellationToken.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(100));
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>Subscribes to NBD_CMD_LINK_DEAD when the request asks for dead connections to be replaced.</summary>
    internal void StartReplacingDeadConnections()
    {
        if (!_request.ReplaceDeadConnections || Method != KernelAttachMethod.Netlink) return;
        _linkMonitor = NbdLinkDeadMonitor.Start(index =>
        {
            if (index == Index && Volatile.Read(ref _state) == 0) _ = Task.Run(ReplaceDeadConnectionsAsync);
        });
    }

    private async Task ReplaceDeadConnectionsAsync()
    {
        if (Interlocked.Exchange(ref _replacing, 1) != 0) return;
        try
        {
            // the kernel shut its end down; wait until our end has seen it and its server finished
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (LiveConnections >= _request.Connections && DateTime.UtcNow < deadline && Volatile.Read(ref _state) == 0)
                await Task.Delay(50).ConfigureAwait(false);
            if (Volatile.Read(ref _state) != 0) return;
            var missing = _request.Connections - LiveConnections;
            if (missing <= 0)
                throw new KernelNbdException($"{DevicePath}: the kernel reported a dead connection, but all {_request.Connections} " +
                    "of ours stayed open for 10 s; the device waits for its dead-connection timeout");
            using var client = NbdNetlinkClient.Open();
            HandOverSockets(client, missing, _stop.Token);
            Interlocked.Add(ref _replacedConnections, missing);
            ConnectionsReplaced?.Invoke(missing);
        }
        catch (Exception e) when (e is KernelNbdException or NetlinkException or OperationCanceledException or IOException)
        {
            ReplacementFailed?.Invoke(e);
        }
        finally
        {
            Volatile.Write(ref _replacing, 0);
            OnConnectionEnded();
        }
    }

    private void OnConnectionEnded()
    {
        if (StillServed) return;
        if (_linkMonitor is null)
        {
            EndDisconnectedUnderUs();
            return;
        }
        // A dead link is announced (NBD_CMD_LINK_DEAD) and replaced; a user's DISCONNECT is not. Give the
        // announcement a moment, then believe the kernel's status.
        _ = Task.Run(async () =>
        {
            for (var i = 0; i < 40; i++)
            {
                await Task.Delay(250).ConfigureAwait(false);
                if (StillServed) return;
                try
                {
                    if (KernelNbd.Status(Index) is not [{ Connected: true }]) break;
                }
                catch (Exception e) when (e is NetlinkException or NetlinkFamilyNotFoundException) { break; }
            }
            if (Volatile.Read(ref _replacing) == 0 && LiveConnections == 0) EndDisconnectedUnderUs();
        });
    }

    /// <summary>A connection is live or being replaced, or the device was already detached or released.</summary>
    private bool StillServed => Volatile.Read(ref _replacing) != 0 || LiveConnections > 0 || Volatile.Read(ref _state) != 0;

    /// <summary>Every connection ended and none will be replaced: someone else disconnected the device.</summary>
    private void EndDisconnectedUnderUs()
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0) return;
        StopServing();
    }

    /// <summary>Drops the sockets without telling the kernel anything (a failed re-attach).</summary>
    internal void Abandon()
    {
        Interlocked.Exchange(ref _state, 2);
        StopServing();
    }

    /// <summary>Closes every connection and completes <see cref="Ended"/>.</summary>
    private void StopServing()
    {
        _stop.Cancel();
        lock (_lock)
            foreach (var (socket, _) in _connections)
                socket.Dispose();
        _ended.TrySetResult();
    }

    private async Task WaitForConnectionsAsync(TimeSpan timeout)
    {
        try { await Completion.WaitAsync(timeout).ConfigureAwait(false); }
        catch (TimeoutException) { }
        catch (Exception) { /* a connection's own failure is the serving code's to report */ }
    }

    private void RequireNetlink(string what)
    {
        if (Method != KernelAttachMethod.Netlink)
            throw new NotSupportedException($"{what} needs the NBD netlink interface; {DevicePath} was attached with ioctls");
    }
}
