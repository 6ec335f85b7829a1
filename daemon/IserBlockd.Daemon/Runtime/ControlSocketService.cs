using IserBlockd.Daemon.Control;
using Microsoft.Extensions.Hosting;

namespace IserBlockd.Daemon.Runtime;

/// <summary>Runs the control socket for the lifetime of the host; a socket that cannot be bound stops the start.</summary>
public sealed class ControlSocketService(ControlServer server) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        server.Start();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await server.DisposeAsync().ConfigureAwait(false);
}
