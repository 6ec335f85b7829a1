using System.Buffers;

namespace IserBlockd.BlockDev;

/// <summary>
/// Hands out payload buffers for requests. Steady-state I/O must not allocate: implementations pool
/// both the memory and the owner objects. Disposing the owner returns the buffer.
/// </summary>
public interface IBlockBufferProvider
{
    /// <summary>Rents a buffer whose <see cref="IMemoryOwner{T}.Memory"/> is exactly <paramref name="length"/> bytes.
    /// Waits (asynchronously) when the pool is exhausted rather than failing.</summary>
    ValueTask<IMemoryOwner<byte>> RentAsync(int length, CancellationToken cancellationToken);

    /// <summary>What network clients may hold of this pool (derived from its capacity); null: the pool is not
    /// bounded, and only the NBD server's own limits apply.</summary>
    Buffers.BufferPoolShares? Shares => null;
}
