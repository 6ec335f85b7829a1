using System.Runtime.InteropServices;
using System.Text;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma;

/// <summary>
/// An open RDMA device (<c>ibv_context</c>) as librdmacm hands it out: through a connection id once its address
/// is resolved (<see cref="RdmaCmId.Device"/>), or from the device list (<see cref="RdmaDeviceList"/>). The
/// context stays open while its owner does; the protection domains, completion queues and channels created on
/// it keep that owner referenced.
/// </summary>
public sealed unsafe class DeviceContext
{
    internal DeviceContext(IbvContext* native, SafeHandle owner)
    {
        Native = native;
        Owner = owner;
        var name = LibIbverbs.ibv_get_device_name(native->Device);
        DeviceName = name == null ? "?" : Marshal.PtrToStringUTF8((IntPtr)name) ?? "?";
    }

    internal IbvContext* Native { get; }

    internal SafeHandle Owner { get; }

    /// <summary>The kernel device name, e.g. <c>rxe0</c> or <c>mlx5_0</c>.</summary>
    public string DeviceName { get; }

    /// <summary>The device's limits (ibv_query_device).</summary>
    public DeviceLimits QueryLimits()
    {
        var added = false;
        Owner.DangerousAddRef(ref added);
        try
        {
            IbvDeviceAttr attributes;
            var rc = LibIbverbs.ibv_query_device(Native, &attributes);
            if (rc != 0) throw RdmaException.FromErrno($"ibv_query_device({DeviceName})", rc);
            return new DeviceLimits(
                attributes.MaxMemoryRegionSize,
                attributes.MaxQueuePairWorkRequests,
                attributes.MaxScatterGather,
                attributes.MaxCompletionQueueEntries,
                attributes.MaxQpReadAtomic,
                attributes.MaxQpInitiatorReadAtomic,
                attributes.Capabilities,
                attributes.MaxMemoryWindows);
        }
        finally
        {
            if (added) Owner.DangerousRelease();
        }
    }

    public override string ToString() => DeviceName;
}

/// <summary>The device limits that size queues and RDMA-CM connection parameters.</summary>
/// <param name="MaxQpReadAtomic">Outstanding RDMA READs the device accepts as responder (rdma_conn_param.responder_resources).</param>
/// <param name="MaxQpInitiatorReadAtomic">Outstanding RDMA READs it can issue (initiator_depth).</param>
public readonly record struct DeviceLimits(
    ulong MaxMemoryRegionSize,
    int MaxQueuePairWorkRequests,
    int MaxScatterGather,
    int MaxCompletionQueueEntries,
    int MaxQpReadAtomic,
    int MaxQpInitiatorReadAtomic,
    IbvDeviceCapabilities Capabilities = IbvDeviceCapabilities.None,
    int MaxMemoryWindows = 0)
{
    /// <summary>
    /// Type 2 memory windows (bound by a work request on one queue pair; 2A or 2B): what scopes remote access to one
    /// command. rdma_rxe reports MEM_WINDOW_TYPE_2B.
    /// </summary>
    public bool SupportsType2Windows =>
        MaxMemoryWindows > 0 && (Capabilities & (IbvDeviceCapabilities.MemoryWindowType2A | IbvDeviceCapabilities.MemoryWindowType2B)) != 0;
}
