using System.Net.Sockets;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Hosting;

/// <summary>
/// The runtime's <see cref="SystemdNotifier"/>, except that a notify socket nobody listens on any more (systemd
/// gone, or a test's listener stopped first) is logged once and ignored: READY, STATUS, WATCHDOG and STOPPING are
/// advice to a supervisor, and losing one must never end the daemon or its orderly stop.
/// </summary>
public sealed partial class BestEffortSystemdNotifier(ISystemdNotifier inner, ILogger<BestEffortSystemdNotifier> logger) : ISystemdNotifier
{
    private int _warned;

    public bool IsEnabled => inner.IsEnabled;

    public void Notify(ServiceState state)
    {
        try
        {
            inner.Notify(state);
        }
        catch (SocketException e)
        {
            if (Interlocked.Exchange(ref _warned, 1) == 0) LogNotifyFailed(e.Message);
        }
    }

    [LoggerMessage(EventId = 960, Level = LogLevel.Warning, Message = "systemd notify socket unreachable ({Reason}); notifications are dropped from now on")]
    private partial void LogNotifyFailed(string reason);
}
