using System.Runtime.InteropServices;

namespace IserBlockd.Rdma.Handles;

/// <summary>
/// Owns one rdma-core object. A handle keeps the handles of the objects it was created from alive
/// (<see cref="SafeHandle.DangerousAddRef"/>) and releases them after its own object is freed, so whatever order
/// callers dispose in, rdma-core sees the only order it accepts: MR before PD, QP before CQ, CQ before its
/// completion channel, everything on a device before the cm_id or device list that owns the device context,
/// the cm_id before its event channel.
/// </summary>
internal abstract class RdmaSafeHandle : SafeHandle
{
    private static long s_live;
    private SafeHandle[] _dependencies = [];

    protected RdmaSafeHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    /// <summary>How many native rdma-core objects this process holds through the bindings (for leak checks).</summary>
    public static long LiveCount => Interlocked.Read(ref s_live);

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>
    /// Step 1 of creation: references every parent the native object will depend on, before the native
    /// call uses their pointers (so a parent cannot be freed underneath it).
    /// </summary>
    protected void AddDependencies(params SafeHandle[] dependencies)
    {
        var taken = new List<SafeHandle>(dependencies.Length);
        try
        {
            foreach (var dependency in dependencies)
            {
                var added = false;
                dependency.DangerousAddRef(ref added);
                if (added) taken.Add(dependency);
            }
        }
        catch
        {
            foreach (var d in taken) d.DangerousRelease();
            throw;
        }
        _dependencies = [.. taken];
    }

    /// <summary>Step 2: takes ownership of the native object.</summary>
    protected void Attach(IntPtr native)
    {
        SetHandle(native);
        Interlocked.Increment(ref s_live);
    }

    /// <summary>Step 2 when the native call failed: drops the parent references again.</summary>
    protected void Abandon()
    {
        for (var i = _dependencies.Length - 1; i >= 0; i--) _dependencies[i].DangerousRelease();
        _dependencies = [];
        SetHandleAsInvalid();
    }

    protected sealed override bool ReleaseHandle()
    {
        bool released;
        try
        {
            released = Free(handle);
        }
        finally
        {
            Interlocked.Decrement(ref s_live);
            for (var i = _dependencies.Length - 1; i >= 0; i--) _dependencies[i].DangerousRelease();
            _dependencies = [];
        }
        return released;
    }

    /// <summary>Frees the native object; true on success.</summary>
    protected abstract bool Free(IntPtr native);
}
