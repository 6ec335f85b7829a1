namespace IserBlockd.Daemon.Configuration.Document;

public sealed class NodeDocument
{
    public string? Name { get; set; }
    public List<string?>? Portals { get; set; }
    public string? Target { get; set; }
    public string? Transport { get; set; }
    public ChapDocument? Chap { get; set; }
    public OperationalDocument? Operational { get; set; }
    public LunsDocument? Luns { get; set; }
    /// <summary>With <c>"luns": "all"</c>: how each LUN is exposed (<c>{lun}</c> in the socket path and export name).</summary>
    public LunDocument? LunTemplate { get; set; }
}
