using System.Net.Sockets;
using System.Text.Json;

namespace IserBlockd.Daemon.Control;

/// <summary>iserblockctl's side of the control socket: one request, one response.</summary>
public static class ControlClient
{
    public static async Task<ControlSocketResponse> SendAsync(string socketPath, ControlSocketRequest request, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressNotAvailable or SocketError.ConnectionRefused)
        {
            return ControlSocketResponse.Failure(ControlErrorCodes.NotRunning, $"iserblockd is not running (nothing listens on {socketPath})");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
        {
            return ControlSocketResponse.Failure(ControlErrorCodes.AccessDenied, $"permission denied on {socketPath}: the control socket is for root only");
        }
        catch (SocketException) when (!File.Exists(socketPath))
        {
            return ControlSocketResponse.Failure(ControlErrorCodes.NotRunning, $"iserblockd is not running (no control socket at {socketPath})");
        }

        await using var stream = new NetworkStream(socket, ownsSocket: false);
        byte[] requestLine = [.. JsonSerializer.SerializeToUtf8Bytes(request, ControlJsonContext.Readable.ControlSocketRequest), (byte)'\n'];
        try
        {
            await stream.WriteAsync(requestLine, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The daemon may have answered and closed before reading (e.g. permission denied): read that answer.
        }

        using var reader = new StreamReader(stream);
        var line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
        if (line == null)
            return ControlSocketResponse.Failure(ControlErrorCodes.Internal, "iserblockd closed the control connection without answering");
        try
        {
            return JsonSerializer.Deserialize(line, ControlJsonContext.Readable.ControlSocketResponse)
                ?? ControlSocketResponse.Failure(ControlErrorCodes.Internal, "empty answer from iserblockd");
        }
        catch (JsonException e)
        {
            return ControlSocketResponse.Failure(ControlErrorCodes.Internal, $"unreadable answer from iserblockd: {e.Message}");
        }
    }
}
