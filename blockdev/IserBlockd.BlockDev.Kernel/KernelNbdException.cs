namespace IserBlockd.BlockDev.Kernel;

/// <summary>Attaching, reconfiguring or detaching a kernel NBD device failed.</summary>
public sealed class KernelNbdException(string message, int errno = 0, Exception? innerException = null)
    : Exception(message, innerException)
{
    /// <summary>The errno behind the failure, 0 if there is none.</summary>
    public int Errno { get; } = errno;
}
