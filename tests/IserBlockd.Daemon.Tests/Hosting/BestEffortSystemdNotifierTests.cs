using System.Net.Sockets;
using IserBlockd.Daemon.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Tests.Hosting;

public sealed class BestEffortSystemdNotifierTests
{
    [Fact]
    public void A_notify_socket_nobody_listens_on_is_warned_about_once_and_never_ends_the_stop()
    {
        var logs = new TestLoggerFactory();
        var inner = new RefusingNotifier();
        var notifier = new BestEffortSystemdNotifier(inner, ((ILoggerFactory)logs).CreateLogger<BestEffortSystemdNotifier>());
        var readiness = new SystemdReadiness(notifier, () => "ready");

        readiness.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        readiness.StopAsync(CancellationToken.None).GetAwaiter().GetResult(); // what crashed the daemon at stop

        Assert.Equal(2, inner.Attempts);
        Assert.Single(logs.Lines, l => l.Contains("systemd notify socket unreachable") && l.Contains("refused"));
    }

    private sealed class RefusingNotifier : ISystemdNotifier
    {
        public int Attempts;
        public bool IsEnabled => true;

        public void Notify(ServiceState state)
        {
            Attempts++;
            throw new SocketException((int)SocketError.ConnectionRefused);
        }
    }
}
