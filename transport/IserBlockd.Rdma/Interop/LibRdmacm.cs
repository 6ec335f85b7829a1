using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary>The functions of librdmacm. All int-returning ones return 0, or -1 with errno set.</summary>
internal static unsafe partial class LibRdmacm
{
    public const string Library = "librdmacm.so.1";

    [LibraryImport(Library, SetLastError = true)]
    public static partial RdmaEventChannelNative* rdma_create_event_channel();

    [LibraryImport(Library)]
    public static partial void rdma_destroy_event_channel(RdmaEventChannelNative* channel);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_create_id(RdmaEventChannelNative* channel, RdmaCmIdNative** id, void* context, RdmaPortSpace portSpace);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_destroy_id(RdmaCmIdNative* id);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_bind_addr(RdmaCmIdNative* id, void* address);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_listen(RdmaCmIdNative* id, int backlog);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_resolve_addr(RdmaCmIdNative* id, void* source, void* destination, int timeoutMs);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_resolve_route(RdmaCmIdNative* id, int timeoutMs);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_create_qp(RdmaCmIdNative* id, IbvPd* pd, IbvQpInitAttr* attributes);

    [LibraryImport(Library)]
    public static partial void rdma_destroy_qp(RdmaCmIdNative* id);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_connect(RdmaCmIdNative* id, RdmaConnParam* parameters);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_accept(RdmaCmIdNative* id, RdmaConnParam* parameters);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_reject(RdmaCmIdNative* id, void* privateData, byte privateDataLength);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_disconnect(RdmaCmIdNative* id);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_get_cm_event(RdmaEventChannelNative* channel, RdmaCmEventNative** @event);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int rdma_ack_cm_event(RdmaCmEventNative* @event);

    [LibraryImport(Library)]
    public static partial byte* rdma_event_str(RdmaCmEventType @event);

    [LibraryImport(Library, SetLastError = true)]
    public static partial IbvContext** rdma_get_devices(int* numDevices);

    [LibraryImport(Library)]
    public static partial void rdma_free_devices(IbvContext** list);
}
