using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>An accepting socket of an <see cref="NbdServer"/>. Disposing it stops accepting (clients
/// already connected carry on) and removes the Unix socket file.</summary>
public sealed class NbdListener : IAsyncDisposable
{
    private readonly NbdServer _server;
    private readonly Socket _socket;
    private readonly string? _unixPath;
    private readonly ILogger _logger;
    private Task _acceptLoop = Task.CompletedTask;
    private int _disposed;

    internal NbdListener(NbdServer server, Socket socket, string description, string? unixPath, ILogger logger)
    {
        _server = server;
        _socket = socket;
        _unixPath = unixPath;
        _logger = logger;
        Description = description;
        EndPoint = socket.LocalEndPoint!;
    }

    /// <summary>"unix:PATH" or "tcp:ADDRESS:PORT".</summary>
    public string Description { get; }

    /// <summary>The bound address; for TCP with port 0, the port actually chosen.</summary>
    public EndPoint EndPoint { get; }

    /// <summary>The bound TCP port (0 for a Unix socket).</summary>
    public int Port => EndPoint is IPEndPoint ip ? ip.Port : 0;

    internal void Start() => _acceptLoop = AcceptLoopAsync();

    private async Task AcceptLoopAsync()
    {
        await Task.Yield();
        while (true)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException { SocketErrorCode: SocketError.OperationAborted or SocketError.Interrupted or SocketError.Shutdown })
            {
                return; // closed by DisposeAsync
            }
            catch (SocketException e) when (Volatile.Read(ref _disposed) == 0)
            {
                // Out of file descriptors and the like: log, back off, keep the listener alive.
                NbdLog.AcceptFailed(_logger, e, Description);
                await Task.Delay(100).ConfigureAwait(false);
                continue;
            }
            _server.Accept(client);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _socket.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        if (_unixPath != null)
        {
            try { File.Delete(_unixPath); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        _server.OnListenerClosed(this);
    }
}
