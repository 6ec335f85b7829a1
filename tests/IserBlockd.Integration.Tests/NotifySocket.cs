using System.Net.Sockets;
using System.Text;

namespace IserBlockd.Integration.Tests;

/// <summary>Plays systemd's side of sd_notify: a datagram socket whose path goes into NOTIFY_SOCKET.</summary>
internal sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly List<(DateTime At, string Message)> _messages = [];
    private readonly Task _receiver;

    public NotifySocket(string path)
    {
        Path = path;
        _socket.Bind(new UnixDomainSocketEndPoint(path));
        _receiver = Task.Run(ReceiveAsync);
    }

    public string Path { get; }

    public IReadOnlyList<(DateTime At, string Message)> Messages { get { lock (_messages) return [.. _messages]; } }

    private async Task ReceiveAsync()
    {
        var buffer = new byte[4096];
        while (true)
        {
            int n;
            try { n = await _socket.ReceiveAsync(buffer, SocketFlags.None); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
            lock (_messages) _messages.Add((DateTime.UtcNow, Encoding.UTF8.GetString(buffer, 0, n)));
        }
    }

    /// <summary>Waits for a datagram with a line equal to <paramref name="assignment"/> (e.g. READY=1) and returns when it came.</summary>
    public async Task<DateTime> WaitForAsync(string assignment, TimeSpan timeout)
    {
        (DateTime At, string Message) hit = default;
        try
        {
            await Wait.Until(() => (hit = Messages.FirstOrDefault(m => m.Message.Split('\n').Contains(assignment))).Message != null, assignment, timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no {assignment} within {timeout}; got: {string.Join(" | ", Messages.Select(m => m.Message))}");
        }
        return hit.At;
    }

    public void Dispose()
    {
        _socket.Dispose();
        _receiver.Wait(TimeSpan.FromSeconds(5));
    }
}
