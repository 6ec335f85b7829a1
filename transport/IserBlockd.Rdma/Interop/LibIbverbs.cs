using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Interop;

/// <summary>
/// The exported functions of libibverbs. The data-path verbs (post send/receive, poll, request notification)
/// are not exported: they are called through <see cref="IbvContextOps"/>.
/// Functions returning a pointer or -1 set errno; those returning int return the errno value itself.
/// </summary>
internal static unsafe partial class LibIbverbs
{
    public const string Library = "libibverbs.so.1";

    [LibraryImport(Library, SetLastError = true)]
    public static partial void** ibv_get_device_list(int* numDevices);

    [LibraryImport(Library)]
    public static partial void ibv_free_device_list(void** list);

    [LibraryImport(Library)]
    public static partial byte* ibv_get_device_name(void* device);

    [LibraryImport(Library)]
    public static partial int ibv_query_device(IbvContext* context, IbvDeviceAttr* attributes);

    [LibraryImport(Library, SetLastError = true)]
    public static partial IbvPd* ibv_alloc_pd(IbvContext* context);

    [LibraryImport(Library)]
    public static partial int ibv_dealloc_pd(IbvPd* pd);

    [LibraryImport(Library, SetLastError = true)]
    public static partial IbvCompChannel* ibv_create_comp_channel(IbvContext* context);

    [LibraryImport(Library)]
    public static partial int ibv_destroy_comp_channel(IbvCompChannel* channel);

    [LibraryImport(Library, SetLastError = true)]
    public static partial IbvCq* ibv_create_cq(IbvContext* context, int entries, void* cqContext, IbvCompChannel* channel, int completionVector);

    [LibraryImport(Library)]
    public static partial int ibv_destroy_cq(IbvCq* cq);

    [LibraryImport(Library, SetLastError = true)]
    public static partial int ibv_get_cq_event(IbvCompChannel* channel, IbvCq** cq, void** cqContext);

    [LibraryImport(Library)]
    public static partial void ibv_ack_cq_events(IbvCq* cq, uint count);

    [LibraryImport(Library, SetLastError = true)]
    public static partial IbvMr* ibv_reg_mr(IbvPd* pd, void* address, nuint length, IbvAccessFlags access);

    [LibraryImport(Library)]
    public static partial int ibv_dereg_mr(IbvMr* mr);

    [LibraryImport(Library)]
    public static partial byte* ibv_wc_status_str(IbvWcStatus status);
}
