using IserBlockd.Iscsi;
using IserBlockd.Iscsi.ConnectionPort;

namespace IserBlockd.Benchmarks.Iscsi;

/// <summary>
/// The core's transport port with no network: every connection reaches its own <see cref="MemoryDiskTarget"/>,
/// all of them on the same memory disk.
/// </summary>
internal sealed class InMemoryIscsiTransport(byte[] disk, int blockSize) : IIscsiTransport
{
    public string Name => "memory";

    public ValueTask<IIscsiConnection> ConnectAsync(IscsiPortal portal, CancellationToken cancellationToken)
        => ValueTask.FromResult<IIscsiConnection>(new InMemoryIscsiConnection(disk, blockSize));
}
