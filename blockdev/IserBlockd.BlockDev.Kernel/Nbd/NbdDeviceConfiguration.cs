namespace IserBlockd.BlockDev.Kernel.Nbd;

/// <summary>
/// The attributes of an NBD_CMD_CONNECT or NBD_CMD_RECONFIGURE request; null leaves an attribute out
/// (CONNECT: the kernel's default; RECONFIGURE: unchanged).
/// </summary>
public sealed record NbdDeviceConfiguration
{
    /// <summary>Device index (nbdN); null on CONNECT asks for the first free one.</summary>
    public uint? Index { get; init; }
    public ulong? SizeBytes { get; init; }
    /// <summary>Logical block size; 512..page size, a power of two. 0 means 1024 to the kernel, so pass the real one.</summary>
    public ulong? BlockSizeBytes { get; init; }
    /// <summary>Per-request timeout in seconds. 0 = never time out (only "possible stuck request" warnings).</summary>
    public ulong? TimeoutSeconds { get; init; }
    /// <summary>NBD transmission flags as the server would announce them (HAS_FLAGS, READ_ONLY, SEND_FLUSH ...).</summary>
    public ulong? ServerFlags { get; init; }
    public NbdDeviceClientFlags? ClientFlags { get; init; }
    /// <summary>How long requests wait for a RECONFIGURE after every connection died, in seconds (0 = fail at once).</summary>
    public ulong? DeadConnectionTimeoutSeconds { get; init; }
    /// <summary>Names what the device serves; the kernel then refuses a RECONFIGURE that names another.</summary>
    public string? BackendIdentifier { get; init; }
}
