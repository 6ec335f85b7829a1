namespace IserBlockd.Daemon.Configuration.Document;

public sealed class MetricsDocument
{
    /// <summary>Serve the Prometheus text format at http://ADDRESS:PORT/metrics (port 9809 by default).</summary>
    public string? Listen { get; set; }
}
