using System.Buffers;
using IserBlockd.BlockDev;
using IserBlockd.Transport.Iser;
using IserBlockd.Transport.Selection;

namespace IserBlockd.Daemon.Luns;

/// <summary>
/// Where a LUN's NBD payloads live: for an iSER session, the registered memory of its RDMA device, so that WRITE
/// payloads are received from the NBD socket straight into memory the target RDMA-Reads, and READ data is
/// RDMA-Written where the NBD reply is sent from; for TCP, the daemon's pinned pool.
/// </summary>
public static class SessionBuffers
{
    public static (IBlockBufferProvider Buffers, int MaxTransferBytes) For(TransportChoice? choice, IBlockBufferProvider tcpPool, int tcpMax) =>
        choice?.Iser is { } iser ? (new RegisteredBuffers(iser), Math.Min(tcpMax, iser.MaxBufferSize)) : (tcpPool, tcpMax);

    private sealed class RegisteredBuffers(IserTransport transport) : IBlockBufferProvider
    {
        public ValueTask<IMemoryOwner<byte>> RentAsync(int length, CancellationToken cancellationToken) => transport.RentAsync(length, cancellationToken);
    }
}
