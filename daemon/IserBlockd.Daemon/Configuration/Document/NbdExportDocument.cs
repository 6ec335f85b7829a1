namespace IserBlockd.Daemon.Configuration.Document;

public sealed class NbdExportDocument
{
    public string? Socket { get; set; }
    public string? Listen { get; set; }
    public string? ExportName { get; set; }
    public int? MaxConnections { get; set; }
    public string? Tls { get; set; }
    public string? TlsCreds { get; set; }
    public bool? TlsVerifyPeer { get; set; }
    public double? HandshakeTimeout { get; set; }
    public double? SendTimeout { get; set; }
}
