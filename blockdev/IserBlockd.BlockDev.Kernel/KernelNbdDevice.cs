using System.Net.Sockets;
using IserBlockd.BlockDev.Kernel.Ioctl;
using IserBlockd.BlockDev.Kernel.Native;
using IserBlockd.BlockDev.Kernel.Nbd;
using IserBlockd.BlockDev.Kernel.Netlink;

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
    public int LiveConnections
    {
        get { lock (_lock) return _connections.Count(c => !c.Task.IsCompleted); }
    }

    /// <summary>Completes when every connection served so far has ended.</summary>
    public Task Completion
    {
        get { lock (_lock) return Task.WhenAll(_connections.Select(c => c.Task)); }
    }

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
                    client.Disconnect(Index);
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
    public async Task ReleaseAsync()
    {
        RequireNetlink("leaving a device for re-attach");
        if (Interlocked.CompareExchange(ref _state, 2, 0) != 0) return;
        StopServing();
        await WaitForConnectionsAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _state) == 0) await DetachAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>Starts serving one connection whose other end the kernel holds.</summary>
    internal void Serve(Socket socket)
    {
        var task = Task.Run(async () =>
        {
            try { await _serve(socket, _stop.Token).ConfigureAwait(false); }
            finally { socket.Dispose(); }
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
            var pairs = Enumerable.Range(0, count).Select(_ => SocketPair.Create()).ToList();
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

    /// <summary>Drops the sockets without telling the kernel anything (a failed re-attach).</summary>
    internal void Abandon()
    {
        Interlocked.Exchange(ref _state, 2);
        StopServing();
    }

    private void StopServing()
    {
        _stop.Cancel();
        lock (_lock)
            foreach (var (socket, _) in _connections)
                socket.Dispose();
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
