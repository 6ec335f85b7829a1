using System.Runtime.InteropServices;
using IserBlockd.Rdma.Handles;
using IserBlockd.Rdma.Interop;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Rdma;

/// <summary>Whether this host can do RDMA at all, and if not, why (for the transport choice and for error messages).</summary>
/// <param name="DeviceNames">The RDMA devices (e.g. rxe0, mlx5_0); empty when none.</param>
public sealed record RdmaAvailability(bool IsAvailable, IReadOnlyList<string> DeviceNames, string Reason);

/// <summary>Finds the host's RDMA devices.</summary>
public static class RdmaDevices
{
    internal const string RdmaCmDevice = "/dev/infiniband/rdma_cm";

    /// <summary>
    /// Lists the RDMA devices (ibv_get_device_list) and checks that RDMA-CM is usable. Never throws: a host
    /// without rdma-core, without RDMA kernel support or without devices gets <c>IsAvailable = false</c> and a reason.
    /// </summary>
    public static RdmaAvailability Probe()
    {
        string[] names;
        try
        {
            names = ListDeviceNames(out var errno);
            if (errno != 0)
                return new RdmaAvailability(false, [], errno == Errno.ENOSYS
                    ? "no RDMA device: the kernel has no RDMA support loaded (ib_uverbs is missing; ibv_get_device_list: ENOSYS)"
                    : $"no RDMA device: ibv_get_device_list failed: {Errno.Describe(errno)}");
        }
        catch (DllNotFoundException)
        {
            return new RdmaAvailability(false, [], RdmaLibraries.MissingMessage);
        }
        if (names.Length == 0)
            return new RdmaAvailability(false, [],
                "no RDMA device: no RDMA NIC, and no soft-RoCE/iWARP link configured (see 'rdma link')");
        if (!File.Exists(RdmaCmDevice))
            return new RdmaAvailability(false, names,
                $"RDMA devices {string.Join(", ", names)} exist but RDMA-CM is not available ({RdmaCmDevice} is missing: load rdma_ucm)");
        return new RdmaAvailability(true, names, $"RDMA devices: {string.Join(", ", names)}");
    }

    private static unsafe string[] ListDeviceNames(out int errno)
    {
        int count;
        var list = LibIbverbs.ibv_get_device_list(&count);
        if (list == null)
        {
            errno = Marshal.GetLastPInvokeError();
            if (errno == 0) errno = Errno.ENODEV;
            return [];
        }
        try
        {
            errno = 0;
            var names = new string[count];
            for (var i = 0; i < count; i++)
                names[i] = Marshal.PtrToStringUTF8((IntPtr)LibIbverbs.ibv_get_device_name(list[i])) ?? "?";
            return names;
        }
        finally
        {
            LibIbverbs.ibv_free_device_list(list);
        }
    }

    /// <summary>
    /// Opens librdmacm's device contexts (rdma_get_devices): the same contexts connection ids use, so protection
    /// domains and registered memory created on them serve every connection on that device.
    /// Throws <see cref="RdmaUnavailableException"/> when there is none.
    /// </summary>
    public static unsafe RdmaDeviceList Open()
    {
        var handle = RdmaLibraries.Call(DeviceListHandle.Open);
        if (handle.Count == 0)
        {
            handle.Dispose();
            throw new RdmaUnavailableException(Probe().Reason, Errno.ENODEV);
        }
        var devices = new DeviceContext[handle.Count];
        for (var i = 0; i < devices.Length; i++) devices[i] = new DeviceContext(handle.Native[i], handle);
        return new RdmaDeviceList(handle, devices);
    }
}

/// <summary>The device contexts of librdmacm, kept open until disposed (and while anything created on them lives).</summary>
public sealed class RdmaDeviceList : IDisposable
{
    private readonly DeviceListHandle _handle;

    internal RdmaDeviceList(DeviceListHandle handle, IReadOnlyList<DeviceContext> devices)
    {
        _handle = handle;
        Devices = devices;
    }

    public IReadOnlyList<DeviceContext> Devices { get; }

    /// <summary>The device named <paramref name="name"/>, or null.</summary>
    public DeviceContext? Find(string name) => Devices.FirstOrDefault(d => d.DeviceName == name);

    public void Dispose() => _handle.Dispose();
}
