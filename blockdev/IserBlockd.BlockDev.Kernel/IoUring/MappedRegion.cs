using System.Runtime.InteropServices;

namespace IserBlockd.BlockDev.Kernel.IoUring;

/// <summary>Owns one mmap'ed region (a ring, the SQE array, ublk's I/O descriptors) and unmaps it once.</summary>
internal sealed class MappedRegion : SafeHandle
{
    private MappedRegion(nint address, nuint length) : base(IoUringNative.MapFailed, ownsHandle: true)
    {
        SetHandle(address);
        Length = length;
    }

    public nuint Length { get; }

    public override bool IsInvalid => handle == IoUringNative.MapFailed;

    /// <summary>The start of the mapping; valid while this handle is not disposed.</summary>
    public nint Address => handle;

    /// <summary>mmap(MAP_SHARED | MAP_POPULATE) of <paramref name="length"/> bytes of <paramref name="fd"/> at <paramref name="offset"/>.</summary>
    public static MappedRegion Map(int fd, nuint length, long offset, bool writable, string what)
    {
        var protection = IoUringNative.ProtRead | (writable ? IoUringNative.ProtWrite : 0);
        var address = IoUringNative.mmap(0, length, protection, IoUringNative.MapShared | IoUringNative.MapPopulate, fd, offset);
        if (address == IoUringNative.MapFailed)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IoUringException($"mmap of {what} ({length} bytes at offset 0x{offset:x})", errno);
        }
        return new MappedRegion(address, length);
    }

    protected override bool ReleaseHandle() => IoUringNative.munmap(handle, Length) == 0;
}
