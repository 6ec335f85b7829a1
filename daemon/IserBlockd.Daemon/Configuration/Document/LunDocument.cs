namespace IserBlockd.Daemon.Configuration.Document;

public sealed class LunDocument
{
    public int? Lun { get; set; }
    public string? Device { get; set; }
    public NbdExportDocument? Nbd { get; set; }
    public bool? ReadOnly { get; set; }
}
