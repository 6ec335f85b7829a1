using System.Buffers;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Transport.Iser;

/// <summary>
/// What every iSER connection on one RDMA device shares: one protection domain, the registered data buffer pool
/// the NBD side receives WRITE payloads into and sends READ payloads from (so that the target moves them by RDMA
/// with no copy), and a small bounce pool for task buffers that are not registered memory. Memory registered in the
/// protection domain is recognised by its local key, so a buffer from another device's pool (or none) is never
/// advertised to a target that cannot reach it.
/// <para>
/// Where the device has type 2 memory windows (rdma_rxe, mlx5: <see cref="UsesWindows"/>), the pools are registered
/// with no remote access at all: a target reaches a buffer only through a window its connection binds for one
/// command and invalidates when the command ends, so no key opens another session's buffers, or a finished
/// command's. Without windows the registrations carry remote access themselves and every session on the device
/// shares their keys (the connection log says which).
/// </para>
/// </summary>
public sealed class IserDevice : IIserTaskMemory, IDisposable
{
    private readonly KeyRegistry _keys = new();

    private readonly IMemoryRegistrar _registrar;
    private readonly Func<int, ICommandWindows>? _windows;

    /// <param name="registrar">Registers data, bounce and one-off buffers (remote access, or window binding only).</param>
    /// <param name="descriptorRegistrar">Registers with local access only (connection descriptors).</param>
    /// <param name="windows">Creates a connection's memory windows; null when the registrations grant remote access.</param>
    internal IserDevice(string name, IMemoryRegistrar registrar, IMemoryRegistrar descriptorRegistrar, IserDeviceOptions options,
        ProtectionDomain? protectionDomain = null, Func<int, ICommandWindows>? windows = null)
    {
        Name = name;
        ProtectionDomain = protectionDomain;
        _windows = windows;
        _registrar = new TrackingRegistrar(registrar, _keys);
        DescriptorRegistrar = descriptorRegistrar;
        DataBuffers = new RegisteredBufferPool(_registrar, options.DataBuffers);
        try
        {
            BounceBuffers = new RegisteredBufferPool(_registrar, options.BounceBuffers);
        }
        catch
        {
            DataBuffers.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The device's resources on a protection domain of a real RDMA device: window-scoped registrations where the
    /// device has type 2 windows (and <see cref="IserDeviceOptions.MemoryWindows"/> is on).
    /// </summary>
    internal static IserDevice Create(ProtectionDomain protectionDomain, IserDeviceOptions options)
    {
        var windows = options.MemoryWindows && protectionDomain.Device.QueryLimits().SupportsType2Windows;
        return new(protectionDomain.Device.DeviceName,
            new ProtectionDomainRegistrar(protectionDomain, windows ? ProtectionDomainRegistrar.WindowAccess : ProtectionDomainRegistrar.Access),
            new LocalAccessRegistrar(protectionDomain), options, protectionDomain,
            windows ? count => new MemoryWindowSet(protectionDomain, count) : null);
    }

    /// <summary>Remote access goes only through memory windows bound per command (none of the registrations grants any).</summary>
    public bool UsesWindows => _windows != null;

    /// <summary>The RDMA device (e.g. rxe0, mlx5_0).</summary>
    public string Name { get; }

    /// <summary>The protection domain every connection on this device uses (null for the in-memory test device).</summary>
    public ProtectionDomain? ProtectionDomain { get; }

    /// <summary>
    /// The zero-copy buffers: rent data buffers for SCSI tasks on iSER sessions from here (the daemon's LUN adapter
    /// uses this pool as its block buffer provider). Same signature as blockdev's IBlockBufferProvider.RentAsync.
    /// </summary>
    public RegisteredBufferPool DataBuffers { get; }

    internal RegisteredBufferPool BounceBuffers { get; }

    /// <summary>Registers connection descriptors (local access only).</summary>
    internal IMemoryRegistrar DescriptorRegistrar { get; }

    public int MaxBounceLength => BounceBuffers.MaxBufferSize;

    public bool TryGetRegistered(ReadOnlyMemory<byte> memory, out RdmaSegment segment, out IntPtr region)
    {
        region = IntPtr.Zero;
        return RegisteredBuffer.TryGetSegment(memory, out segment) && _keys.TryFind(segment, out region);
    }

    public IntPtr RegionOf(in RdmaSegment segment) => _keys.TryFind(segment, out var region) ? region : IntPtr.Zero;

    ICommandWindows? IIserTaskMemory.CreateWindows(int count) => _windows?.Invoke(count);

    public async ValueTask<RegisteredBuffer> RentBounceAsync(int length, CancellationToken cancellationToken) =>
        (RegisteredBuffer)await BounceBuffers.RentAsync(length, cancellationToken).ConfigureAwait(false);

    public unsafe IDisposable RegisterPinned(Memory<byte> memory, out RdmaSegment segment, out IntPtr region)
    {
        var pin = memory.Pin();
        try
        {
            var registration = _registrar.Register((IntPtr)pin.Pointer, (nuint)memory.Length);
            segment = new RdmaSegment((ulong)pin.Pointer, (uint)memory.Length, registration.LocalKey, registration.RemoteKey);
            region = registration.NativeRegion;
            return new PinnedRegistration(pin, registration);
        }
        catch
        {
            pin.Dispose();
            throw;
        }
    }

    /// <summary>Frees the pools (once their buffers are back) and the protection domain.</summary>
    public void Dispose()
    {
        DataBuffers.Dispose();
        BounceBuffers.Dispose();
        ProtectionDomain?.Dispose();
    }

    private sealed class PinnedRegistration(MemoryHandle pin, IMemoryRegistration registration) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            registration.Dispose();
            pin.Dispose();
        }
    }

    /// <summary>Registers for local access only: the descriptors' keys never leave this host.</summary>
    private sealed class LocalAccessRegistrar(ProtectionDomain protectionDomain) : IMemoryRegistrar
    {
        public IMemoryRegistration Register(IntPtr address, nuint length) =>
            protectionDomain.RegisterMemory(address, length, IbvAccessFlags.LocalWrite);
    }
}

/// <summary>Sizes of the per-device pools.</summary>
public sealed record IserDeviceOptions
{
    /// <summary>
    /// The zero-copy data buffers (the NBD side's payloads). Default: <see cref="RegisteredBufferPoolOptions.Default"/>
    /// (4 KiB × 256, 64 KiB × 64, 256 KiB × 32, 1 MiB × 32: 45 MiB pinned).
    /// </summary>
    public RegisteredBufferPoolOptions DataBuffers { get; init; } = RegisteredBufferPoolOptions.Default;

    /// <summary>
    /// Bounce buffers for task buffers that are not registered memory (16 × 64 KiB, 8 × 1 MiB: 9 MiB pinned). A larger
    /// buffer is registered for its command alone.
    /// </summary>
    public RegisteredBufferPoolOptions BounceBuffers { get; init; } = new()
    {
        SizeClasses = [new(64 * 1024, 16), new(1024 * 1024, 8)],
    };

    /// <summary>
    /// Scope remote access to one command with type 2 memory windows where the device has them (default). Off: the
    /// registrations grant remote access themselves and their keys are shared by every session on the device.
    /// </summary>
    public bool MemoryWindows { get; init; } = true;
}

/// <summary>
/// The memory registered through a <see cref="TrackingRegistrar"/>: key and address range of each region (lock-free
/// reads). A buffer is ours only if its key and its whole range match one region: keys alone may repeat across devices.
/// </summary>
internal sealed class KeyRegistry
{
    private volatile Region[] _regions = [];
    private readonly object _gate = new();

    /// <summary>True when one region holds the whole segment; <paramref name="native"/> is its <c>ibv_mr*</c>.</summary>
    public bool TryFind(in RdmaSegment segment, out IntPtr native)
    {
        foreach (var r in _regions)
            if (r.LocalKey == segment.LocalKey && segment.Address >= r.Start && segment.Address + segment.Length <= r.Start + r.Length)
            {
                native = r.Native;
                return true;
            }
        native = IntPtr.Zero;
        return false;
    }

    public void Add(uint localKey, ulong start, ulong length, IntPtr native)
    {
        lock (_gate) _regions = [.. _regions, new Region(localKey, start, length, native)];
    }

    public void Remove(uint localKey, ulong start)
    {
        lock (_gate) _regions = _regions.Where(r => r.LocalKey != localKey || r.Start != start).ToArray();
    }

    private readonly record struct Region(uint LocalKey, ulong Start, ulong Length, IntPtr Native);
}

/// <summary>Registers through another registrar and remembers the keys, so that buffers can be traced to this protection domain.</summary>
internal sealed class TrackingRegistrar(IMemoryRegistrar inner, KeyRegistry keys) : IMemoryRegistrar
{
    public IMemoryRegistration Register(IntPtr address, nuint length)
    {
        var registration = inner.Register(address, length);
        keys.Add(registration.LocalKey, (ulong)address, length, registration.NativeRegion);
        return new Tracked(registration, keys, (ulong)address);
    }

    private sealed class Tracked(IMemoryRegistration inner, KeyRegistry keys, ulong start) : IMemoryRegistration
    {
        public uint LocalKey => inner.LocalKey;

        public uint RemoteKey => inner.RemoteKey;

        public IntPtr NativeRegion => inner.NativeRegion;

        public void Dispose()
        {
            keys.Remove(inner.LocalKey, start);
            inner.Dispose();
        }
    }
}
