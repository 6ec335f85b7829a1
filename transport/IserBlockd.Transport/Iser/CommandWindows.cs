using IserBlockd.Rdma;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Transport.Iser;

/// <summary>
/// The memory windows of one iSER connection, one per command in flight: each command's task buffer is reachable by
/// the target only through the window bound for it on this connection's queue pair, and only until the window is
/// invalidated when the command ends. <see cref="MemoryWindowSet"/> is the real one; unit tests use a fake that
/// plays the RNIC's key checks.
/// </summary>
internal unsafe interface ICommandWindows : IDisposable
{
    int Count { get; }

    /// <summary>Fills <paramref name="workRequest"/> as the bind of window <paramref name="window"/>; returns its new key.</summary>
    uint PrepareBind(int window, IbvSendWr* workRequest, IntPtr memoryRegion, ulong address, ulong length, IbvAccessFlags access);

    /// <summary>Fills <paramref name="workRequest"/> as a local invalidate of the window's current key.</summary>
    void PrepareLocalInvalidate(int window, IbvSendWr* workRequest);

    /// <summary>The key of the window's latest bind.</summary>
    uint KeyOf(int window);
}

/// <summary>Type 2 memory windows allocated in the device's protection domain (ibv_alloc_mw).</summary>
internal sealed unsafe class MemoryWindowSet : ICommandWindows
{
    private readonly MemoryWindow[] _windows;

    public MemoryWindowSet(ProtectionDomain protectionDomain, int count)
    {
        _windows = new MemoryWindow[count];
        try
        {
            for (var i = 0; i < count; i++) _windows[i] = MemoryWindow.Allocate(protectionDomain);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Count => _windows.Length;

    public uint PrepareBind(int window, IbvSendWr* workRequest, IntPtr memoryRegion, ulong address, ulong length, IbvAccessFlags access) =>
        _windows[window].PrepareBind(workRequest, memoryRegion, address, length, access);

    public void PrepareLocalInvalidate(int window, IbvSendWr* workRequest) => _windows[window].PrepareLocalInvalidate(workRequest);

    public uint KeyOf(int window) => _windows[window].RemoteKey;

    /// <summary>Frees the windows (after the queue pair is destroyed).</summary>
    public void Dispose()
    {
        foreach (var window in _windows) window?.Dispose();
    }
}
