using System.Buffers;
using System.Runtime.CompilerServices;
using IserBlockd.BlockDev;
using IserBlockd.BlockDev.Buffers;
using IserBlockd.Rdma;
using IserBlockd.Transport.Iser;
using IserBlockd.Transport.Selection;

namespace IserBlockd.Daemon.Luns;

/// <summary>
/// Where a LUN's NBD payloads live: for an iSER session, the registered memory of its RDMA device, so that WRITE
/// payloads are received from the NBD socket straight into memory the target RDMA-Reads, and READ data is
/// RDMA-Written where the NBD reply is sent from; for TCP, the daemon's pinned pool. Network clients' shares
/// (<see cref="BufferPoolShares"/>) come from the pool the LUN really rents from: an iSER device's registered pool is
/// about a tenth of the TCP pool.
/// </summary>
public static class SessionBuffers
{
    public static (IBlockBufferProvider Buffers, int MaxTransferBytes) For(TransportChoice? choice, IBlockBufferProvider tcpPool, int tcpMax) =>
        choice?.Iser is { } iser ? (new RegisteredBuffers(iser), Math.Min(tcpMax, iser.MaxBufferSize)) : (tcpPool, tcpMax);

    /// <summary>The shares of each registered pool, made once per pool: every LUN on an RDMA device (every session,
    /// where the device's pool is shared) counts its network clients against the same budget.</summary>
    private static readonly ConditionalWeakTable<RegisteredBufferPool, BufferPoolShares> s_shares = new();

    private sealed class RegisteredBuffers(IserTransport transport) : IBlockBufferProvider
    {
        public ValueTask<IMemoryOwner<byte>> RentAsync(int length, CancellationToken cancellationToken) => transport.RentAsync(length, cancellationToken);

        public BufferPoolShares? Shares => transport.Device?.DataBuffers is { } pool
            ? s_shares.GetValue(pool, static p => new BufferPoolShares(p.SizeClasses.Sum(c => (long)c.BufferSize * c.Count)))
            : null;
    }
}
