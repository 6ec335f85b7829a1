using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Hosting;

/// <summary>Serves the Prometheus endpoint for the lifetime of the host when <c>metrics.listen</c> is set; an address
/// that cannot be bound stops the start (as the control socket does).</summary>
public sealed partial class MetricsService(HostPort listen, ILogger<MetricsService> logger) : IHostedService, IDisposable
{
    private PrometheusEndpoint? _endpoint;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _endpoint = PrometheusEndpoint.Start(listen);
        LogListening(_endpoint.Url);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _endpoint?.Dispose();
        _endpoint = null;
    }

    [LoggerMessage(LogLevel.Information, "Metrics served on {Url}")]
    private partial void LogListening(string url);
}
