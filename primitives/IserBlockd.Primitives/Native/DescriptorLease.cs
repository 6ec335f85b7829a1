using System.Runtime.InteropServices;

namespace IserBlockd.Primitives.Native;

/// <summary>
/// Keeps a handle's descriptor from being closed (and its number reused) while a system call uses it:
/// <c>using var fd = new DescriptorLease(handle);</c> then <see cref="Fd"/>. A handle already closed throws
/// <see cref="ObjectDisposedException"/> here, before any call.
/// </summary>
public readonly ref struct DescriptorLease
{
    private readonly SafeHandle _handle;

    public DescriptorLease(SafeHandle handle)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        _handle = handle;
        Fd = (int)handle.DangerousGetHandle();
    }

    public int Fd { get; }

    /// <summary>Whether the descriptor is non-blocking (O_NONBLOCK), so that a splice on it cannot stall the caller.</summary>
    public bool IsNonBlocking => (LibC.fcntl(Fd, LibC.F_GETFL, 0) & LibC.O_NONBLOCK) != 0;

    /// <summary>Bytes waiting to be read (FIONREAD); 0 when it cannot tell.</summary>
    public unsafe int BytesToRead
    {
        get
        {
            int bytes;
            return LibC.ioctl(Fd, LibC.FIONREAD, &bytes) == 0 ? bytes : 0;
        }
    }

    public void Dispose() => _handle.DangerousRelease();
}
