using System.Runtime.InteropServices;
using IserBlockd.Rdma.Interop;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Rdma.Handles;

// One SafeHandle per rdma-core object type. Creation helpers throw RdmaException naming the call and errno.

/// <summary>An <c>rdma_event_channel</c>: the descriptor that reports RDMA-CM events.</summary>
internal sealed unsafe class EventChannelHandle : RdmaSafeHandle
{
    public RdmaEventChannelNative* Native => (RdmaEventChannelNative*)handle;

    public static EventChannelHandle Create()
    {
        var h = new EventChannelHandle();
        var native = LibRdmacm.rdma_create_event_channel();
        if (native == null)
        {
            var errno = Marshal.GetLastPInvokeError();
            h.Abandon();
            throw RdmaException.FromErrno("rdma_create_event_channel", errno);
        }
        h.Attach((IntPtr)native);
        return h;
    }

    protected override bool Free(IntPtr native)
    {
        LibRdmacm.rdma_destroy_event_channel((RdmaEventChannelNative*)native);
        return true;
    }
}

/// <summary>An <c>rdma_cm_id</c>. Depends on its event channel.</summary>
internal sealed unsafe class CmIdHandle : RdmaSafeHandle
{
    public RdmaCmIdNative* Native => (RdmaCmIdNative*)handle;

    public static CmIdHandle Create(EventChannelHandle channel, RdmaPortSpace portSpace)
    {
        var h = new CmIdHandle();
        h.AddDependencies(channel);
        RdmaCmIdNative* id;
        if (LibRdmacm.rdma_create_id(channel.Native, &id, null, portSpace) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            h.Abandon();
            throw RdmaException.FromErrno("rdma_create_id", errno);
        }
        h.Attach((IntPtr)id);
        return h;
    }

    /// <summary>Adopts the id rdma-cm created for an incoming connection request on a listening id.</summary>
    public static CmIdHandle Adopt(RdmaCmIdNative* id, EventChannelHandle channel)
    {
        var h = new CmIdHandle();
        h.AddDependencies(channel);
        h.Attach((IntPtr)id);
        return h;
    }

    protected override bool Free(IntPtr native) => LibRdmacm.rdma_destroy_id((RdmaCmIdNative*)native) == 0;
}

/// <summary>The device list of librdmacm (<c>rdma_get_devices</c>): keeps its device contexts referenced.</summary>
internal sealed unsafe class DeviceListHandle : RdmaSafeHandle
{
    public IbvContext** Native => (IbvContext**)handle;

    public int Count { get; private set; }

    public static DeviceListHandle Open()
    {
        var h = new DeviceListHandle();
        int count;
        var list = LibRdmacm.rdma_get_devices(&count);
        if (list == null)
        {
            var errno = Marshal.GetLastPInvokeError();
            h.Abandon();
            throw RdmaException.FromErrno("rdma_get_devices", errno == 0 ? Errno.ENODEV : errno);
        }
        h.Count = count;
        h.Attach((IntPtr)list);
        return h;
    }

    protected override bool Free(IntPtr native)
    {
        LibRdmacm.rdma_free_devices((IbvContext**)native);
        return true;
    }
}

/// <summary>An <c>ibv_pd</c>. Depends on whatever keeps its device context open.</summary>
internal sealed unsafe class ProtectionDomainHandle : RdmaSafeHandle
{
    public IbvPd* Native => (IbvPd*)handle;

    public static ProtectionDomainHandle Allocate(DeviceContext context)
    {
        var h = new ProtectionDomainHandle();
        h.AddDependencies(context.Owner);
        var pd = LibIbverbs.ibv_alloc_pd(context.Native);
        if (pd == null)
        {
            var errno = Marshal.GetLastPInvokeError();
            h.Abandon();
            throw RdmaException.FromErrno($"ibv_alloc_pd({context.DeviceName})", errno);
        }
        h.Attach((IntPtr)pd);
        return h;
    }

    protected override bool Free(IntPtr native) => LibIbverbs.ibv_dealloc_pd((IbvPd*)native) == 0;
}

/// <summary>An <c>ibv_comp_channel</c>. Depends on whatever keeps its device context open.</summary>
internal sealed unsafe class CompletionChannelHandle : RdmaSafeHandle
{
    public IbvCompChannel* Native => (IbvCompChannel*)handle;

    public static CompletionChannelHandle Create(DeviceContext context)
    {
        var h = new CompletionChannelHandle();
        h.AddDependencies(context.Owner);
        var channel = LibIbverbs.ibv_create_comp_channel(context.Native);
        if (channel == null)
        {
            var errno = Marshal.GetLastPInvokeError();
            h.Abandon();
            throw RdmaException.FromErrno("ibv_create_comp_channel", errno);
        }
        h.Attach((IntPtr)channel);
        return h;
    }

    protected override bool Free(IntPtr native) => LibIbverbs.ibv_destroy_comp_channel((IbvCompChannel*)native) == 0;
}

/// <summary>An <c>ibv_cq</c>. Depends on its completion channel and the device context's owner.</summary>
internal sealed unsafe class CompletionQueueHandle : RdmaSafeHandle
{
    public IbvCq* Native => (IbvCq*)handle;

    public static CompletionQueueHandle Create(DeviceContext context, int entries, CompletionChannelHandle channel, int completionVector)
    {
        var h = new CompletionQueueHandle();
        h.AddDependencies(context.Owner, channel);
        var cq = LibIbverbs.ibv_create_cq(context.Native, entries, null, channel.Native, completionVector);
        if (cq == null)
        {
            var errno = Marshal.GetLastPInvokeError();
            h.Abandon();
            throw RdmaException.FromErrno($"ibv_create_cq({entries} entries)", errno);
        }
        h.Attach((IntPtr)cq);
        return h;
    }

    protected override bool Free(IntPtr native) => LibIbverbs.ibv_destroy_cq((IbvCq*)native) == 0;
}

/// <summary>
/// The queue pair of an <c>rdma_cm_id</c> (created by <c>rdma_create_qp</c>, so the CM drives its state
/// transitions). The handle value is the cm_id; it depends on the cm_id, the PD and the CQs.
/// </summary>
internal sealed unsafe class QueuePairHandle : RdmaSafeHandle
{
    public RdmaCmIdNative* CmId => (RdmaCmIdNative*)handle;

    public static QueuePairHandle Create(CmIdHandle cmId, ProtectionDomainHandle pd, CompletionQueueHandle sendCq,
        CompletionQueueHandle receiveCq, IbvQpInitAttr* attributes)
    {
        var h = new QueuePairHandle();
        if (ReferenceEquals(sendCq, receiveCq)) h.AddDependencies(cmId, pd, sendCq);
        else h.AddDependencies(cmId, pd, sendCq, receiveCq);
        if (LibRdmacm.rdma_create_qp(cmId.Native, pd.Native, attributes) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            h.Abandon();
            throw RdmaException.FromErrno("rdma_create_qp", errno);
        }
        h.Attach((IntPtr)cmId.Native);
        return h;
    }

    protected override bool Free(IntPtr native)
    {
        LibRdmacm.rdma_destroy_qp((RdmaCmIdNative*)native);
        return true;
    }
}

/// <summary>An <c>ibv_mr</c>. Depends on its protection domain (deregistration happens before PD dealloc).</summary>
internal sealed unsafe class MemoryRegionHandle : RdmaSafeHandle
{
    public IbvMr* Native => (IbvMr*)handle;

    public static MemoryRegionHandle Register(ProtectionDomainHandle pd, void* address, nuint length, IbvAccessFlags access)
    {
        var h = new MemoryRegionHandle();
        h.AddDependencies(pd);
        var mr = LibIbverbs.ibv_reg_mr(pd.Native, address, length, access);
        if (mr == null)
        {
            var errno = Marshal.GetLastPInvokeError();
            h.Abandon();
            throw RdmaException.FromErrno($"ibv_reg_mr({length} bytes)", errno);
        }
        h.Attach((IntPtr)mr);
        return h;
    }

    protected override bool Free(IntPtr native) => LibIbverbs.ibv_dereg_mr((IbvMr*)native) == 0;
}
