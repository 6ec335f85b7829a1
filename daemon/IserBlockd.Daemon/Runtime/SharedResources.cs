using IserBlockd.BlockDev;
using IserBlockd.BlockDev.Buffers;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.Daemon.Luns;
using IserBlockd.Daemon.Mappings;

namespace IserBlockd.Daemon.Runtime;

/// <summary>What every node of the daemon shares: payload buffers, NBD listeners, server options.</summary>
public sealed class SharedResources(NbdEndpointRegistry endpoints) : IAsyncDisposable
{
    /// <summary>Pinned payload buffers for TCP sessions (iSER will bring a registered pool of its own).</summary>
    public IBlockBufferProvider Buffers { get; } = new PinnedBlockBufferPool(new PinnedBlockBufferPoolOptions { MaxBufferSize = ScsiLunBlockDevice.MaxRequestBytes });

    public NbdEndpointRegistry Endpoints { get; } = endpoints;

    public NbdServerOptions ServerOptions { get; } = new();

    public ValueTask DisposeAsync() => Endpoints.DisposeAsync();
}
