namespace IserBlockd.BlockDev.Kernel.IoUring;

/// <summary>An io_uring system call, or an operation submitted through one, failed with <see cref="Errno"/>.</summary>
public sealed class IoUringException(string what, int errno)
    : IOException($"{what}: {Primitives.Native.Errno.Describe(errno)}")
{
    public int Errno { get; } = errno;
}
