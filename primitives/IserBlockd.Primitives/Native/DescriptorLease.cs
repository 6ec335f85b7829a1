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

    public void Dispose() => _handle.DangerousRelease();
}
