using Microsoft.Extensions.Hosting.Systemd;

namespace IserBlockd.Daemon.Hosting;

/// <summary>The one-line STATUS= that <c>systemctl status iserblockd</c> shows.</summary>
public sealed class ServiceStatus(ISystemdNotifier notifier)
{
    public void Set(string status)
    {
        if (notifier.IsEnabled)
            notifier.Notify(new ServiceState("STATUS=" + status.ReplaceLineEndings(" ")));
    }
}
