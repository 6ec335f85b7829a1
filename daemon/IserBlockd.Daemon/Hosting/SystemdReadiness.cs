using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace IserBlockd.Daemon.Hosting;

/// <summary>
/// READY=1 and STOPPING=1 for Type=notify. Registered after every other hosted service: the host starts
/// services in order and stops them in reverse, so READY=1 goes out only once the supervisor has
/// brought the configured mappings up, and STOPPING=1 before anything starts shutting down.
/// </summary>
public sealed class SystemdReadiness(ISystemdNotifier notifier, Func<string> status) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (notifier.IsEnabled)
            notifier.Notify(new ServiceState($"READY=1\nSTATUS={status().ReplaceLineEndings(" ")}\nMAINPID={Environment.ProcessId}"));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        if (notifier.IsEnabled)
            notifier.Notify(new ServiceState("STOPPING=1\nSTATUS=stopping: flushing LUNs, detaching devices, logging out"));
        return Task.CompletedTask;
    }
}
