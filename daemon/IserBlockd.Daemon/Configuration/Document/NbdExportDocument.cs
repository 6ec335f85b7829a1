namespace IserBlockd.Daemon.Configuration.Document;

public sealed class NbdExportDocument
{
    public string? Socket { get; set; }
    public string? Listen { get; set; }
    public string? ExportName { get; set; }
}
