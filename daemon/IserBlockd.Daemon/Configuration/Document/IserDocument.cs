namespace IserBlockd.Daemon.Configuration.Document;

/// <summary>The <c>iser</c> section: sizes of the registered (pinned) memory of each RDMA device.</summary>
public sealed class IserDocument
{
    public List<BufferClassDocument?>? DataBuffers { get; set; }
    public List<BufferClassDocument?>? BounceBuffers { get; set; }
    public bool? MemoryWindows { get; set; }
}
