using IserBlockd.Rdma;

namespace IserBlockd.Transport.Iser;

/// <summary>
/// The <see cref="IserDevice"/> of each RDMA device, created when the first connection resolves to it and kept for
/// the life of the process (or of this registry): its protection domain and registered pools serve every session on
/// that device, across reconnects, so the buffers the NBD side holds stay valid. Opened on librdmacm's own device
/// contexts (the ones connection ids use), as a queue pair requires.
/// <para>
/// Sharing is safe only where remote access goes through memory windows bound per command
/// (<see cref="IserDevice.UsesWindows"/>). On a device without type 2 windows, or with
/// <see cref="IserDeviceOptions.MemoryWindows"/> off, the registrations' own keys grant remote access, so each
/// session gets a protection domain and pools of its own (<see cref="OpenForSession"/>): a target reached through
/// one session can never use a key that opens another session's buffers (its queue pair is in another domain).
/// </para>
/// </summary>
public sealed class IserDeviceRegistry : IDisposable
{
    private static readonly Lazy<IserDeviceRegistry> s_shared = new(() => new IserDeviceRegistry());
    private readonly object _gate = new();
    private readonly Dictionary<string, IserDevice> _devices = new(StringComparer.Ordinal);
    private RdmaDeviceList? _list;
    private bool _disposed;

    public IserDeviceRegistry(IserDeviceOptions? options = null) => Options = options ?? new IserDeviceOptions();

    /// <summary>The process-wide registry with the default pool sizes.</summary>
    public static IserDeviceRegistry Shared => s_shared.Value;

    public IserDeviceOptions Options { get; }

    /// <summary>The devices opened so far.</summary>
    public IReadOnlyList<IserDevice> Devices
    {
        get { lock (_gate) return [.. _devices.Values]; }
    }

    /// <summary>Raised (once per device) when a device's resources are created.</summary>
    public event Action<IserDevice>? DeviceOpened;

    /// <summary>The device named <paramref name="deviceName"/>, creating its protection domain and pools on first use.</summary>
    public IserDevice GetOrOpen(string deviceName)
    {
        IserDevice device;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_devices.TryGetValue(deviceName, out var existing)) return existing;
            _list ??= RdmaDevices.Open();
            var context = _list.Find(deviceName)
                ?? throw new RdmaException($"RDMA device {deviceName} is not among librdmacm's devices ({string.Join(", ", _list.Devices)})");
            var protectionDomain = ProtectionDomain.Allocate(context);
            try
            {
                device = IserDevice.Create(protectionDomain, Options);
            }
            catch
            {
                protectionDomain.Dispose();
                throw;
            }
            _devices.Add(deviceName, device);
        }
        DeviceOpened?.Invoke(device);
        return device;
    }

    /// <summary>
    /// The device resources for one session's connections on <paramref name="deviceName"/>: the shared ones where
    /// the device scopes remote access with memory windows (<paramref name="owned"/> false), otherwise a protection
    /// domain and pools of the session's own (<paramref name="owned"/> true: the caller disposes them when the
    /// session ends; they are kept across its reconnects).
    /// </summary>
    public IserDevice OpenForSession(string deviceName, out bool owned)
    {
        DeviceContext context;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            owned = false;
            if (_devices.TryGetValue(deviceName, out var existing) && existing.UsesWindows) return existing;
            _list ??= RdmaDevices.Open();
            context = _list.Find(deviceName)
                ?? throw new RdmaException($"RDMA device {deviceName} is not among librdmacm's devices ({string.Join(", ", _list.Devices)})");
        }
        if (Options.MemoryWindows && context.QueryLimits().SupportsType2Windows) return GetOrOpen(deviceName);
        owned = true;
        var protectionDomain = ProtectionDomain.Allocate(context);
        try
        {
            return IserDevice.Create(protectionDomain, Options with { MemoryWindows = false });
        }
        catch
        {
            protectionDomain.Dispose();
            throw;
        }
    }

    /// <summary>Frees every device's pools and protection domain (rented buffers keep their memory until returned).</summary>
    public void Dispose()
    {
        List<IserDevice> devices;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            devices = [.. _devices.Values];
            _devices.Clear();
        }
        foreach (var device in devices) device.Dispose();
        _list?.Dispose();
    }
}
