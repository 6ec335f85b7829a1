namespace IserBlockd.Daemon.Configuration.Document;

/// <summary>One size class of a registered buffer pool: <c>{ "size": 1048576, "count": 32 }</c>.</summary>
public sealed class BufferClassDocument
{
    public int? Size { get; set; }
    public int? Count { get; set; }
}
