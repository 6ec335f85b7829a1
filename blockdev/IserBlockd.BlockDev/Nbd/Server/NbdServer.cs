using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using IserBlockd.BlockDev.Nbd.Streams;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// An NBD server (fixed newstyle, doc/proto.md) for a set of named <see cref="NbdExport"/>s.
/// </summary>
/// <remarks>
/// <para>Ways in:</para>
/// <list type="bullet">
/// <item><see cref="ListenUnix"/> and <see cref="ListenTcp"/> accept clients (qemu, libnbd, nbdcopy,
/// fio, nbd-client) and run the handshake, then the transmission phase.</item>
/// <item><see cref="ServeAsync(Socket, CancellationToken)"/> does the same for a socket connected by
/// someone else.</item>
/// <item><see cref="ServeTransmissionAsync(Socket, NbdExport, CancellationToken)"/> skips the handshake:
/// for the kernel's /dev/nbdX, which is handed one end of a socketpair and speaks only the
/// transmission phase with simple replies.</item>
/// </list>
/// <para>Exports can be added and removed while the server runs; removing one refuses new clients but
/// leaves connected ones alone. <see cref="DisposeAsync"/> stops listening, lets every connection
/// finish the requests it has started (their replies are delivered) and closes them.</para>
/// </remarks>
public sealed class NbdServer : IAsyncDisposable
{
    /// <summary>The IANA port for NBD.</summary>
    public const int DefaultPort = 10809;

    private readonly ConcurrentDictionary<string, NbdExport> _exports = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Task, byte> _connections = new();
    private readonly ConcurrentDictionary<NbdListener, byte> _listeners = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ILogger _logger;
    private int _disposed;

    public NbdServer(NbdServerOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        Options = options ?? new NbdServerOptions();
        Options.Validate();
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<NbdServer>();
    }

    public NbdServerOptions Options { get; }

    public IReadOnlyCollection<NbdExport> Exports => _exports.Values.OrderBy(e => e.Name, StringComparer.Ordinal).ToArray();

    /// <summary>Connections currently being served (handshake or transmission).</summary>
    public int ConnectionCount => _connections.Count;

    public void AddExport(NbdExport export)
    {
        ArgumentNullException.ThrowIfNull(export);
        if (!_exports.TryAdd(export.Name, export))
            throw new InvalidOperationException($"An export named '{export.Name}' already exists.");
    }

    /// <summary>Stops offering an export to new clients; connected clients keep using it.</summary>
    public bool RemoveExport(string name) => _exports.TryRemove(name, out _);

    public NbdExport? FindExport(string name) => _exports.GetValueOrDefault(name);

    /// <summary>Listens on a Unix stream socket at <paramref name="path"/> (a stale socket file is replaced).</summary>
    public NbdListener ListenUnix(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ThrowIfDisposed();
        if (File.Exists(path) && IsStaleSocket(path))
            File.Delete(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(128);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return StartListener(socket, "unix:" + path, path);
    }

    private const int SolSocket = 1, SoReuseAddr = 2;

    /// <summary>Listens on TCP, by default 127.0.0.1:<see cref="DefaultPort"/>. Port 0 picks a free port
    /// (see <see cref="NbdListener.EndPoint"/>).</summary>
    public NbdListener ListenTcp(IPEndPoint? endPoint = null)
    {
        ThrowIfDisposed();
        endPoint ??= new IPEndPoint(IPAddress.Loopback, DefaultPort);
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // SO_REUSEADDR alone (a restart may bind while old connections sit in TIME_WAIT). .NET's
            // ReuseAddress option also sets SO_REUSEPORT on Linux, which lets a second listener share the
            // port and receive half of the clients: an address must belong to one export only.
            socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            if (endPoint.AddressFamily == AddressFamily.InterNetworkV6 && endPoint.Address.Equals(IPAddress.IPv6Any))
                socket.DualMode = true;
            socket.Bind(endPoint);
            socket.Listen(128);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return StartListener(socket, "tcp:" + socket.LocalEndPoint, null);
    }

    /// <summary>Serves one connected client: handshake, then transmission until it disconnects.
    /// Takes ownership of the socket.</summary>
    public Task ServeAsync(Socket socket, CancellationToken cancellationToken = default) =>
        ServeAsync(CreateTransport(socket), cancellationToken);

    /// <summary>Serves one connected client over any transport (tests use an in-memory one).
    /// Takes ownership of the transport.</summary>
    public Task ServeAsync(INbdTransport transport, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ThrowIfDisposed();
        return Track(ServeWithHandshakeAsync(transport, cancellationToken));
    }

    /// <summary>
    /// Serves the transmission phase on an already connected socket, with no handshake and simple replies
    /// only — what the kernel NBD driver speaks on the sockets it is given (NBD_CMD_CONNECT /
    /// NBD_CMD_RECONFIGURE over netlink, or NBD_SET_SOCK). The caller tells the kernel the export's size,
    /// <see cref="NbdExport.BlockSizes"/> and <see cref="NbdExport.GetTransmissionFlags"/> (with
    /// <c>structuredReplies: false</c>); requests must respect them (the maximum block size included,
    /// e.g. through the queue's max_sectors_kb), or they get EINVAL.
    /// </summary>
    /// <returns>A task that completes when the connection is closed: the kernel sent NBD_CMD_DISC or
    /// closed its end, the peer broke the protocol, or <paramref name="cancellationToken"/> was cancelled
    /// (then requests already started are finished and answered first). It does not fault for those.</returns>
    /// <remarks>Takes ownership of the socket. Several sockets may serve one export at once when the
    /// device has <see cref="BlockDeviceFeatures.MultiConnection"/>. The export need not be added to the
    /// server, and <see cref="NbdExport.MaxConnections"/> does not apply.</remarks>
    public Task ServeTransmissionAsync(Socket socket, NbdExport export, CancellationToken cancellationToken = default) =>
        ServeTransmissionAsync(CreateTransport(socket), export, structuredReplies: false, cancellationToken);

    /// <summary>Transmission phase without handshake over any transport; see
    /// <see cref="ServeTransmissionAsync(Socket, NbdExport, CancellationToken)"/>.</summary>
    public Task ServeTransmissionAsync(INbdTransport transport, NbdExport export, bool structuredReplies, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(export);
        ThrowIfDisposed();
        return Track(RunTransmissionAsync(transport, export, structuredReplies, cancellationToken));
    }

    private async Task ServeWithHandshakeAsync(INbdTransport transport, CancellationToken cancellationToken)
    {
        await Task.Yield(); // never run a client on the accept loop's stack
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        NbdLog.Connected(_logger, transport.RemoteDescription);
        NbdNegotiatedSession? session;
        var handshake = new NbdHandshake(transport, FindExport, () => Exports, Options, _logger);
        try
        {
            session = await handshake.RunAsync(linked.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            NbdLog.ConnectionFailed(_logger, e, transport.RemoteDescription);
            session = null;
        }
        if (session == null)
        {
            await handshake.Transport.DisposeAsync().ConfigureAwait(false);
            return;
        }
        try
        {
            await new NbdConnection(session.Transport, session.Export, session.StructuredReplies, session.AllocationContext, Options, _logger, client: true)
                .RunAsync(linked.Token).ConfigureAwait(false);
        }
        finally
        {
            session.Export.ReleaseConnection();
        }
    }

    private async Task RunTransmissionAsync(INbdTransport transport, NbdExport export, bool structuredReplies, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        NbdConnection connection;
        try
        {
            connection = new NbdConnection(transport, export, structuredReplies, allocationContext: false, Options, _logger);
        }
        catch
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        await connection.RunAsync(linked.Token).ConfigureAwait(false);
    }

    private Task Track(Task connection)
    {
        var tracked = CompleteOffTheLoopAsync(connection);
        _connections.TryAdd(tracked, 0);
        _ = tracked.ContinueWith(static (t, s) => ((NbdServer)s!)._connections.TryRemove(t, out _), this,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return tracked;
    }

    /// <summary>
    /// A connection may end on the runtime's socket thread (with inline completions, NBD code runs there)
    /// which must never block.
    /// The task callers get completes on the thread pool instead, so whatever they continue with
    /// (cleanup, blocking waits) cannot stall every other connection on that loop.
    /// </summary>
    private static async Task CompleteOffTheLoopAsync(Task connection)
    {
        try
        {
            await connection.ConfigureAwait(false);
        }
        finally
        {
            await Task.CompletedTask.ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        }
    }

    private NbdListener StartListener(Socket socket, string description, string? unixPath)
    {
        var listener = new NbdListener(this, socket, description, unixPath, _logger);
        _listeners.TryAdd(listener, 0);
        NbdLog.Listening(_logger, description);
        listener.Start();
        return listener;
    }

    internal void OnListenerClosed(NbdListener listener) => _listeners.TryRemove(listener, out _);

    internal void Accept(Socket client)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            client.Dispose();
            return;
        }
        try
        {
            _ = ServeAsync(CreateTransport(client), CancellationToken.None);
        }
        catch (Exception e)
        {
            NbdLog.ConnectionFailed(_logger, e, "(accepting)");
        }
    }

    /// <summary>Wraps a socket we now own; on failure it is closed.</summary>
    private INbdTransport CreateTransport(Socket socket)
    {
        try
        {
            return new SocketTransport(socket, Options.SocketSendBufferBytes, Options.SocketReceiveBufferBytes);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>A socket file nobody listens on (left by a process that died); sockets have no length,
    /// so a file with contents is never taken for one.</summary>
    private static bool IsStaleSocket(string path)
    {
        if (new FileInfo(path).Length != 0) return false;
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return true;
        }
        throw new IOException($"Another server is already listening on {path}.");
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    /// <summary>Stops listening, then finishes and closes every connection (requests already started
    /// are answered; nothing new is read).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        foreach (var listener in _listeners.Keys) await listener.DisposeAsync().ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_connections.Keys).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            NbdLog.ConnectionFailed(_logger, e, "(shutdown)");
        }
        _stopping.Dispose();
    }
}
