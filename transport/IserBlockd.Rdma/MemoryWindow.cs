using IserBlockd.Rdma.Handles;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma;

/// <summary>
/// A type 2 memory window (<c>ibv_mw</c>): remote access to a piece of a registration (registered with
/// <see cref="IbvAccessFlags.MemoryWindowBind"/> and no remote access of its own), granted by a bind work request on
/// one queue pair and usable only through that queue pair, until it is invalidated (a local invalidate, or the peer's
/// Send with Invalidate). Each bind gives the window a new key (the low 8 bits incremented), so a key from an earlier
/// bind names nothing. The window's owner posts the work requests this class fills; one bind or invalidate at a time.
/// </summary>
public sealed unsafe class MemoryWindow : IDisposable
{
    private readonly MemoryWindowHandle _handle;
    private uint _key;

    private MemoryWindow(MemoryWindowHandle handle)
    {
        _handle = handle;
        _key = handle.Native->RemoteKey;
    }

    /// <summary>Allocates a type 2 window in <paramref name="protectionDomain"/> (ibv_alloc_mw).</summary>
    public static MemoryWindow Allocate(ProtectionDomain protectionDomain) =>
        new(MemoryWindowHandle.Allocate(protectionDomain.Handle, IbvMwType.Type2));

    /// <summary>The key of the latest bind this window was prepared for (the allocation's key before the first).</summary>
    public uint RemoteKey => _key;

    /// <summary>
    /// Fills <paramref name="workRequest"/> as the bind of this window over <paramref name="length"/> bytes at
    /// <paramref name="address"/> inside <paramref name="memoryRegion"/> (an <c>ibv_mr*</c>) with <paramref name="access"/>;
    /// returns the window's new key, the one to advertise. wr_id, next and send_flags are the caller's.
    /// </summary>
    public uint PrepareBind(IbvSendWr* workRequest, IntPtr memoryRegion, ulong address, ulong length, IbvAccessFlags access)
    {
        // Providers read the window's current key from ibv_mw.rkey when the bind is posted (rxe sends it to the kernel,
        // which refuses a key that is not the window's current one), and not all of them update it: keep it ours.
        _handle.Native->RemoteKey = _key;
        _key = IbvMw.NextRemoteKey(_key);
        workRequest->Opcode = IbvWrOpcode.BindMemoryWindow;
        workRequest->ScatterGatherList = null;
        workRequest->ScatterGatherCount = 0;
        workRequest->BindWindow = _handle.Native;
        workRequest->BindRemoteKey = _key;
        workRequest->BindInfo = new IbvMwBindInfo
        {
            MemoryRegion = (void*)memoryRegion,
            Address = address,
            Length = length,
            Access = access,
        };
        return _key;
    }

    /// <summary>Fills <paramref name="workRequest"/> as a local invalidate of the window's current key.</summary>
    public void PrepareLocalInvalidate(IbvSendWr* workRequest)
    {
        _handle.Native->RemoteKey = _key; // the bind has been posted: the window's key is the new one
        workRequest->Opcode = IbvWrOpcode.LocalInvalidate;
        workRequest->ScatterGatherList = null;
        workRequest->ScatterGatherCount = 0;
        workRequest->InvalidateRemoteKey = _key;
    }

    /// <summary>Frees the window (ibv_dealloc_mw; after its queue pair is destroyed or the window invalidated).</summary>
    public void Dispose() => _handle.Dispose();
}
