using IserBlockd.BlockDev;
using IserBlockd.BlockDev.Buffers;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.Daemon.Luns;
using IserBlockd.Daemon.Mappings;
using IserBlockd.Transport.Iser;
using IserBlockd.Transport.Tcp;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Runtime;

/// <summary>What every node of the daemon shares: payload buffers, the registered memory of each RDMA device,
/// NBD listeners, server options.</summary>
public sealed class SharedResources : IAsyncDisposable
{
    /// <param name="serverOptions">Those of every NBD server (<c>export</c> has its own); null: the daemon's.</param>
    public SharedResources(ILoggerFactory loggerFactory, IserDeviceOptions? iserBuffers = null, NbdServerOptions? serverOptions = null)
    {
        ServerOptions = serverOptions ?? new();
        TcpOptions = new TcpTransportOptions { LowDepthPoller = ServerOptions.LowDepthPoller };
        Metrics.DaemonMetrics.Register(ServerOptions.LowDepthPoller);
        IserDevices = new IserDeviceRegistry(iserBuffers);
        Endpoints = new NbdEndpointRegistry(ServerOptions, loggerFactory);
    }

    /// <summary>Pinned payload buffers for TCP sessions (iSER sessions use their device's registered pool).</summary>
    public IBlockBufferProvider Buffers { get; } = new PinnedBlockBufferPool(new PinnedBlockBufferPoolOptions { MaxBufferSize = ScsiLunBlockDevice.MaxRequestBytes });

    /// <summary>One protection domain and registered pools per RDMA device, sized by the configuration's <c>iser</c>
    /// section; created when the first iSER session reaches a device, freed when the daemon stops.</summary>
    public IserDeviceRegistry IserDevices { get; }

    /// <summary>For every NBD server of the daemon: the listeners' (<see cref="Endpoints"/>) and the kernel devices'.
    /// The clients of all listeners together may hold half of a payload pool at most (<see cref="BufferPoolShares"/>
    /// of <see cref="Buffers"/> and of each RDMA device's registered pool), so that however they behave, the kernel
    /// devices always have the other half.</summary>
    public NbdServerOptions ServerOptions { get; }

    /// <summary>Those of every iSCSI TCP connection: they share the NBD servers' poller at queue depth one.</summary>
    public TcpTransportOptions TcpOptions { get; }

    public NbdEndpointRegistry Endpoints { get; }

    public async ValueTask DisposeAsync()
    {
        await Endpoints.DisposeAsync().ConfigureAwait(false);
        IserDevices.Dispose();
        Metrics.DaemonMetrics.Unregister(ServerOptions.LowDepthPoller);
    }
}
