namespace IserBlockd.Daemon.Configuration.Document;

/// <summary>The configuration file as written (iserblockd.json). Every member is optional here;
/// <see cref="ConfigValidator"/> applies defaults and rules and produces <see cref="DaemonSettings"/>.
/// Durations are in seconds.</summary>
public sealed class ConfigDocument
{
    public string? InitiatorName { get; set; }
    public double? ReplacementTimeout { get; set; }
    public double? NopInterval { get; set; }
    public double? NopTimeout { get; set; }
    public double? CommandTimeout { get; set; }
    public double? LoginTimeout { get; set; }
    public double? KernelNbdTimeout { get; set; }
    public int? KernelNbdConnections { get; set; }
    public int? UblkQueueDepth { get; set; }
    public string? KernelNbdMethod { get; set; }
    public bool? ZeroCopyReads { get; set; }
    public int? LowDepthPollMicroseconds { get; set; }
    public IserDocument? Iser { get; set; }
    public ReconnectDocument? Reconnect { get; set; }
    public LoggingDocument? Logging { get; set; }
    public string? ControlSocket { get; set; }
    public MetricsDocument? Metrics { get; set; }
    public List<NodeDocument?>? Nodes { get; set; }
}
