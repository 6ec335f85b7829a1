using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text.Json;
using IserBlockd.Daemon.Native;
using Microsoft.Extensions.Logging;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Daemon.Control;

/// <summary>
/// The daemon's control socket: a Unix stream socket (mode 0600 in a 0700 directory) that takes one
/// JSON request per line and answers one JSON response per line. Only root (or the daemon's own user)
/// may use it; the kernel's SO_PEERCRED says who is asking.
/// </summary>
public sealed partial class ControlServer : IAsyncDisposable
{
    private const int MaxRequestBytes = 64 * 1024;
    private static readonly byte[] NewLine = "\n"u8.ToArray();

    private readonly string _path;
    private readonly IDaemonControl _control;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly uint _ownUid = LibC.geteuid();
    private Socket? _listener;
    private Task _acceptLoop = Task.CompletedTask;
    private readonly HashSet<Task> _clients = [];

    public ControlServer(string path, IDaemonControl control, ILogger<ControlServer> logger)
    {
        _path = path;
        _control = control;
        _logger = logger;
    }

    public string Path => _path;

    /// <summary>Binds the socket (failing now, at startup, if it cannot) and starts accepting.</summary>
    public void Start()
    {
        if (_listener != null) return; // bound early by the host, before the other services start
        var directory = System.IO.Path.GetDirectoryName(_path)!;
        if (!Directory.Exists(directory))
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        RemoveStaleSocket();

        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            try
            {
                listener.Bind(new UnixDomainSocketEndPoint(_path));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                // Another daemon bound it between our check and our bind.
                throw new IOException($"control socket {_path}: address already in use", e);
            }
            File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(16);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _listener = listener;
        _acceptLoop = AcceptLoopAsync(listener, _stopping.Token);
        LogListening(_path);
    }

    /// <summary>A socket file left by a daemon that died is removed; one that answers belongs to a
    /// running daemon, and starting a second one is refused. Anything but a socket is left alone.</summary>
    private void RemoveStaleSocket()
    {
        if (!File.Exists(_path) && !Directory.Exists(_path))
            return;
        if ((File.GetAttributes(_path) & FileAttributes.Directory) != 0)
            throw new IOException($"control socket {_path}: is a directory, not a socket");
        if (!IsSocket(_path))
            throw new IOException($"control socket {_path}: a file that is not a socket is in the way (not removed)");
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(_path));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            // Nobody listens: a daemon that died left it behind.
            File.Delete(_path);
            return;
        }
        catch (SocketException e)
        {
            throw new IOException($"control socket {_path}: cannot check the socket already there: {e.Message}", e);
        }
        throw new IOException($"control socket {_path}: address already in use (another iserblockd answers there)");
    }

    private static unsafe bool IsSocket(string path)
    {
        const ushort typeMask = 0xF000, socketType = 0xC000; // S_IFMT, S_IFSOCK
        StatX stat;
        return LibC.statx(-100 /* AT_FDCWD */, path, 0x100 /* AT_SYMLINK_NOFOLLOW */, LibC.STATX_BASIC_STATS, &stat) == 0
            && (stat.Mode & typeMask) == socketType;
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                LogAcceptFailed(e.Message);
                await Task.Delay(100, CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            var task = ServeAsync(client, cancellationToken);
            lock (_clients) _clients.Add(task);
            _ = task.ContinueWith(t => { lock (_clients) _clients.Remove(t); }, TaskScheduler.Default);
        }
    }

    private async Task ServeAsync(Socket socket, CancellationToken cancellationToken)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            var peer = PeerCredentials.Of(socket);
            if (peer.UserId != 0 && peer.UserId != _ownUid)
            {
                LogRefused(peer.ProcessId, peer.UserId);
                await WriteAsync(stream, ControlSocketResponse.Failure(ControlErrorCodes.AccessDenied,
                    $"permission denied: the iserblockd control socket is for root only (you are uid {peer.UserId})"), cancellationToken).ConfigureAwait(false);
                await LingerAsync(socket).ConfigureAwait(false);
                return;
            }

            var reader = PipeReader.Create(stream);
            while (true)
            {
                var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                var buffer = result.Buffer;
                while (TryReadLine(ref buffer, out var line))
                {
                    // Commands may scan /proc, talk netlink or wait for a login: never on a socket completion thread.
                    await Task.Yield();
                    var response = await HandleAsync(line, peer, cancellationToken).ConfigureAwait(false);
                    await WriteAsync(stream, response, cancellationToken).ConfigureAwait(false);
                }
                if (buffer.Length > MaxRequestBytes)
                {
                    await WriteAsync(stream, ControlSocketResponse.Failure(ControlErrorCodes.BadRequest,
                        $"request longer than {MaxRequestBytes} bytes"), cancellationToken).ConfigureAwait(false);
                    return;
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                    return;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
        {
            // The client went away, or the daemon is stopping: nothing more to say to it.
        }
        catch (Exception e)
        {
            LogClientFailed(e);
        }
    }

    /// <summary>Closes after an answer the client did not wait for: stop sending, then read (and drop) what it
    /// still sends, so that closing with unread data does not reset the connection before it reads the answer.</summary>
    private static async Task LingerAsync(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Send);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            var sink = new byte[4096];
            for (var total = 0; total < MaxRequestBytes;)
            {
                var n = await socket.ReceiveAsync(sink, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (n == 0) break;
                total += n;
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private static bool TryReadLine(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> line)
    {
        var newline = buffer.PositionOf((byte)'\n');
        if (newline == null)
        {
            line = default;
            return false;
        }
        line = buffer.Slice(0, newline.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, newline.Value));
        return true;
    }

    private async Task<ControlSocketResponse> HandleAsync(ReadOnlySequence<byte> line, PeerCredentials peer, CancellationToken cancellationToken)
    {
        ControlSocketRequest? request;
        try
        {
            var reader = new Utf8JsonReader(line);
            request = JsonSerializer.Deserialize(ref reader, ControlJsonContext.Readable.ControlSocketRequest);
        }
        catch (JsonException e)
        {
            return ControlSocketResponse.Failure(ControlErrorCodes.BadRequest, $"not a valid request: {e.Message}");
        }
        if (request == null)
            return ControlSocketResponse.Failure(ControlErrorCodes.BadRequest, "not a valid request: null");

        LogRequest(request.Command ?? "(none)", request.Node, peer.ProcessId, peer.UserId);
        try
        {
            return await ControlDispatcher.DispatchAsync(request, _control, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return ControlSocketResponse.Failure(ControlErrorCodes.Internal, "the daemon is stopping");
        }
        catch (Exception e)
        {
            LogCommandFailed(e, request.Command ?? "");
            return ControlSocketResponse.Failure(ControlErrorCodes.Internal, e.Message);
        }
    }

    private static async Task WriteAsync(Stream stream, ControlSocketResponse response, CancellationToken cancellationToken)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(response, ControlJsonContext.Readable.ControlSocketResponse);
        await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(NewLine, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
            return;
        _stopping.Cancel();
        _listener?.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        Task[] clients;
        lock (_clients) clients = [.. _clients];
        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_listener != null)
        {
            try { File.Delete(_path); }
            catch (IOException) { }
        }
        _stopping.Dispose();
    }

    [LoggerMessage(LogLevel.Information, "Control socket listening on {Path}")]
    private partial void LogListening(string path);

    [LoggerMessage(LogLevel.Warning, "Control socket: accept failed: {Reason}")]
    private partial void LogAcceptFailed(string reason);

    [LoggerMessage(LogLevel.Warning, "Control socket: refused pid {Pid} (uid {Uid}): root only")]
    private partial void LogRefused(int pid, uint uid);

    [LoggerMessage(LogLevel.Debug, "Control request {Command} {Node} from pid {Pid} (uid {Uid})")]
    private partial void LogRequest(string command, string? node, int pid, uint uid);

    [LoggerMessage(LogLevel.Error, "Control command {Command} failed")]
    private partial void LogCommandFailed(Exception exception, string command);

    [LoggerMessage(LogLevel.Error, "Control socket client failed")]
    private partial void LogClientFailed(Exception exception);
}
