using System.Runtime.InteropServices;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel.IoUring;

/// <summary>Owns one mmap'ed region (a ring, the SQE array, ublk's I/O descriptors) and unmaps it once.</summary>
internal sealed class MappedRegion : SafeHandle
{
    private MappedRegion(nint address, nuint length) : base(LibC.MAP_FAILED, ownsHandle: true)
    {
        SetHandle(address);
        Length = length;
    }

    public nuint Length { get; }

    public override bool IsInvalid => handle == LibC.MAP_FAILED;

    /// <summary>The start of the mapping; valid while this handle is not disposed.</summary>
    public nint Address => handle;

    /// <summary>mmap(MAP_SHARED | MAP_POPULATE) of <paramref name="length"/> bytes of <paramref name="fd"/> at <paramref name="offset"/>.</summary>
    public static MappedRegion Map(int fd, nuint length, long offset, bool writable, string what)
    {
        var protection = LibC.PROT_READ | (writable ? LibC.PROT_WRITE : 0);
        var address = LibC.mmap(0, length, protection, LibC.MAP_SHARED | LibC.MAP_POPULATE, fd, offset);
        if (address == LibC.MAP_FAILED)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IoUringException($"mmap of {what} ({length} bytes at offset 0x{offset:x})", errno);
        }
        return new MappedRegion(address, length);
    }

    protected override bool ReleaseHandle() => LibC.munmap(handle, Length) == 0;
}
