using System.Runtime.InteropServices;

namespace IserBlockd.Primitives.Native;

/// <summary>Owns one file descriptor (netlink socket, /dev/nbdN, /dev/ublkcN, an eventfd, one end of a socketpair).</summary>
public sealed class FileDescriptorHandle : SafeHandle
{
    public FileDescriptorHandle(int fd) : base(invalidHandleValue: -1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle == -1;

    /// <summary>The descriptor number; valid only while a reference is held (DangerousAddRef) or the
    /// handle is known to be alive.</summary>
    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => LibC.close((int)handle) == 0;
}
