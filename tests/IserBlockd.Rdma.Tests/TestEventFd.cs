using System.Runtime.InteropServices;
using static IserBlockd.Primitives.Native.LibC;

namespace IserBlockd.Rdma.Tests;

/// <summary>An eventfd standing in for a completion or CM channel descriptor in event loop tests.</summary>
internal sealed unsafe class TestEventFd : IDisposable
{
    public TestEventFd()
    {
        Fd = eventfd(0, EFD_CLOEXEC);
        if (Fd < 0) throw new InvalidOperationException($"eventfd failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public int Fd { get; }

    public void Signal()
    {
        ulong one = 1;
        if (write(Fd, &one, 8) != 8) throw new InvalidOperationException($"eventfd write failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Reads the counter (non-blocking once the loop registered the fd); returns how many signals it held.</summary>
    public int Drain()
    {
        ulong value;
        return read(Fd, &value, 8) == 8 ? (int)value : 0;
    }

    public void Dispose() => close(Fd);
}
