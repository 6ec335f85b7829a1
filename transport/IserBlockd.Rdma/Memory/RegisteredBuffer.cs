using System.Buffers;
using System.Runtime.InteropServices;

namespace IserBlockd.Rdma;

/// <summary>
/// One slice of a <see cref="RegisteredBufferPool"/>'s pinned, registered memory, and its owner object: the pool
/// hands the same instance out again after it is disposed (returned), so renting allocates nothing.
/// <see cref="Memory"/> is exactly the rented length; any <see cref="Memory{T}"/> sliced from it can be traced back
/// to its address and keys with <see cref="TryGetSegment"/> — that is how the iSER transport finds the STag/VA
/// of a buffer the NBD side filled.
/// </summary>
public sealed unsafe class RegisteredBuffer : MemoryManager<byte>
{
    private readonly RegisteredBufferPool _pool;
    private readonly byte* _pointer;
    private int _length;
    private int _rented;

    internal RegisteredBuffer(RegisteredBufferPool pool, int sizeClass, byte* pointer, int capacity, uint localKey, uint remoteKey)
    {
        _pool = pool;
        SizeClass = sizeClass;
        _pointer = pointer;
        Capacity = capacity;
        LocalKey = localKey;
        RemoteKey = remoteKey;
    }

    internal int SizeClass { get; }

    /// <summary>The size of the slice (its size class).</summary>
    public int Capacity { get; }

    /// <summary>The rented length: the length of <see cref="Memory"/>.</summary>
    public int Length => _length;

    /// <summary>The virtual address of the slice's first byte.</summary>
    public ulong Address => (ulong)_pointer;

    public uint LocalKey { get; }

    public uint RemoteKey { get; }

    /// <summary>The whole rented range as an RDMA segment.</summary>
    public RdmaSegment Segment => new(Address, (uint)_length, LocalKey, RemoteKey);

    public override Memory<byte> Memory => CreateMemory(_length);

    public override Span<byte> GetSpan() => new(_pointer, Capacity);

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(elementIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(elementIndex, Capacity);
        return new MemoryHandle(_pointer + elementIndex); // native memory: always pinned
    }

    public override void Unpin() { }

    /// <summary>
    /// Finds the registered memory behind <paramref name="memory"/> (which may be a slice of a rented buffer's
    /// <see cref="Memory"/>). False for memory that does not come from a registered buffer pool.
    /// </summary>
    public static bool TryGetSegment(ReadOnlyMemory<byte> memory, out RdmaSegment segment)
    {
        if (MemoryMarshal.TryGetMemoryManager<byte, RegisteredBuffer>(memory, out var buffer, out var start, out var length))
        {
            segment = new RdmaSegment(buffer.Address + (ulong)start, (uint)length, buffer.LocalKey, buffer.RemoteKey);
            return true;
        }
        segment = default;
        return false;
    }

    internal void MarkRented(int length)
    {
        if (Interlocked.Exchange(ref _rented, 1) != 0)
            throw new InvalidOperationException("Internal error: a registered buffer was handed out twice.");
        _length = length;
    }

    internal bool MarkReturned() => Interlocked.Exchange(ref _rented, 0) == 1;

    /// <summary>Returns the buffer to its pool (the same as disposing it as an <see cref="IMemoryOwner{T}"/>).</summary>
    public void Return() => ((IDisposable)this).Dispose();

    /// <summary>Returns the buffer to its pool. Disposing twice is a bug (the buffer may already be someone else's) and throws.</summary>
    protected override void Dispose(bool disposing)
    {
        if (!MarkReturned())
            throw new InvalidOperationException("A registered buffer was returned twice; it may already belong to another request.");
        _pool.Return(this);
    }
}
