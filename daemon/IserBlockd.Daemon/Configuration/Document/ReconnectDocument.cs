namespace IserBlockd.Daemon.Configuration.Document;

public sealed class ReconnectDocument
{
    public double? MinDelay { get; set; }
    public double? MaxDelay { get; set; }
}
