using IserBlockd.Primitives.Native;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma.Handles;

/// <summary>
/// An <c>ibv_mw</c>. ibv_alloc_mw and ibv_dealloc_mw are static inline in verbs.h and call the provider through the
/// device context's ops, as these bindings do. Depends on its protection domain (a window is freed before the PD).
/// </summary>
internal sealed unsafe class MemoryWindowHandle : RdmaSafeHandle
{
    public IbvMw* Native => (IbvMw*)handle;

    public static MemoryWindowHandle Allocate(ProtectionDomainHandle pd, IbvMwType type)
    {
        var h = new MemoryWindowHandle();
        h.AddDependencies(pd);
        var alloc = pd.Native->Context->Ops.AllocMw;
        if (alloc == null)
        {
            h.Abandon();
            throw RdmaException.FromErrno("ibv_alloc_mw (the provider has no memory windows)", Errno.EOPNOTSUPP);
        }
        var mw = alloc(pd.Native, type);
        if (mw == null)
        {
            var errno = System.Runtime.InteropServices.Marshal.GetLastSystemError();
            h.Abandon();
            throw RdmaException.FromErrno($"ibv_alloc_mw(type {(int)type})", errno == 0 ? Errno.EOPNOTSUPP : errno);
        }
        h.Attach((IntPtr)mw);
        return h;
    }

    protected override bool Free(IntPtr native)
    {
        var mw = (IbvMw*)native;
        var context = (IbvContext*)mw->Context;
        return context->Ops.DeallocMw(mw) == 0;
    }
}
