using System.Net;
using IserBlockd.Daemon.Configuration;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace IserBlockd.Daemon.Metrics;

/// <summary>
/// The opt-in scrape endpoint: <see cref="DaemonMetrics"/> in the Prometheus text format at
/// <c>http://ADDRESS:PORT/metrics</c>, served by OpenTelemetry's Prometheus exporter on an HttpListener (no web
/// framework; works in the NativeAOT binary). Nothing listens unless <c>metrics.listen</c> or <c>--metrics-listen</c> asks.
/// </summary>
public sealed class PrometheusEndpoint : IDisposable
{
    private readonly MeterProvider _provider;

    private PrometheusEndpoint(MeterProvider provider, string url)
    {
        _provider = provider;
        Url = url;
    }

    /// <summary>Where to scrape: http://ADDRESS:PORT/metrics.</summary>
    public string Url { get; }

    /// <summary>Starts listening; throws <see cref="IOException"/> naming the address when it cannot.</summary>
    public static PrometheusEndpoint Start(HostPort listen)
    {
        DaemonMetrics.EnsureCreated();
        var host = listen.Host switch
        {
            "0.0.0.0" or "::" => "+", // every address (HttpListener's wildcard)
            _ when listen.IsIPv6Literal => $"[{listen.Host}]",
            _ => listen.Host,
        };
        var url = $"http://{(listen.IsIPv6Literal ? $"[{listen.Host}]" : listen.Host)}:{listen.Port}/metrics";
        try
        {
            var provider = Sdk.CreateMeterProviderBuilder()
                .AddMeter(DaemonMetrics.MeterName)
                .AddPrometheusHttpListener(options =>
                {
                    options.Host = host;
                    options.Port = listen.Port;
                    options.ScrapeEndpointPath = "/metrics";
                    options.ScopeInfoEnabled = false;
                    options.TargetInfoEnabled = false;
                    options.ScrapeResponseCacheDurationMilliseconds = 0; // every scrape sees the figures of that moment
                })
                .Build();
            return new PrometheusEndpoint(provider, url);
        }
        catch (Exception e) when (e is HttpListenerException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            throw new IOException($"cannot serve metrics on {listen}: {(e.InnerException ?? e).Message}", e);
        }
    }

    public void Dispose() => _provider.Dispose();
}
