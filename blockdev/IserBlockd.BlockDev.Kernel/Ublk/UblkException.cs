namespace IserBlockd.BlockDev.Kernel.Ublk;

/// <summary>A ublk operation failed; <see cref="Errno"/> is the kernel's answer when there was one (0 otherwise).</summary>
public sealed class UblkException : IOException
{
    public UblkException(string message, int errno = 0, Exception? inner = null) : base(message, inner) => Errno = errno;

    public int Errno { get; }
}
