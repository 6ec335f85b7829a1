using IserBlockd.Rdma.Interop;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Rdma;

/// <summary>An rdma-core call failed. <see cref="ErrorCode"/> is the errno value (0 when the failure has none).</summary>
public class RdmaException : IOException
{
    public RdmaException(string message, int errno = 0, Exception? inner = null)
        : base(message, inner)
    {
        ErrorCode = errno;
    }

    /// <summary>The errno value reported by rdma-core, or 0.</summary>
    public int ErrorCode { get; }

    /// <summary>
    /// Builds the exception for a failed call: "ibv_reg_mr(4 MiB) failed: ENOMEM: Cannot allocate memory — hint".
    /// Errno values that mean "there is no RDMA here" become <see cref="RdmaUnavailableException"/>.
    /// </summary>
    public static RdmaException FromErrno(string operation, int errno)
    {
        var message = $"{operation} failed: {Errno.Describe(errno)}";
        var hint = Hint(operation, errno);
        if (hint != null) message += " (" + hint + ")";
        return errno is Errno.ENODEV or Errno.ENOSYS && IsDeviceAccess(operation)
            ? new RdmaUnavailableException(message, errno)
            : new RdmaException(message, errno);
    }

    private static bool IsDeviceAccess(string operation) =>
        operation.StartsWith("rdma_create_event_channel", StringComparison.Ordinal) ||
        operation.StartsWith("rdma_create_id", StringComparison.Ordinal) ||
        operation.StartsWith("ibv_get_device_list", StringComparison.Ordinal) ||
        operation.StartsWith("rdma_get_devices", StringComparison.Ordinal);

    private static string? Hint(string operation, int errno) => errno switch
    {
        Errno.ENODEV or Errno.ENOSYS when IsDeviceAccess(operation) =>
            "no RDMA device on this host: no RDMA NIC, or the rdma_cm/ib_uverbs kernel modules are not loaded",
        Errno.ENODEV or Errno.EADDRNOTAVAIL or Errno.ENETUNREACH when operation.StartsWith("rdma_resolve", StringComparison.Ordinal) =>
            "no RDMA device routes to this address",
        Errno.ENOMEM when operation.StartsWith("ibv_reg_mr", StringComparison.Ordinal) =>
            "the locked-memory limit may be too low: raise RLIMIT_MEMLOCK (ulimit -l, LimitMEMLOCK= in the systemd unit)",
        Errno.EACCES or Errno.EPERM => "permission denied on /dev/infiniband: run as root or grant access to the rdma devices",
        _ => null,
    };
}

/// <summary>There is no usable RDMA device (no hardware, no soft-RoCE, or the kernel modules are missing).</summary>
public sealed class RdmaUnavailableException(string message, int errno = 0, Exception? inner = null)
    : RdmaException(message, errno, inner);

/// <summary>
/// RDMA-CM reported a failure event (address or route error, unreachable peer, rejection, connect error) or an
/// event the caller did not expect at that point.
/// </summary>
public class RdmaConnectionException(string message, RdmaCmEventType eventType, int status, Exception? inner = null)
    : RdmaException(message, status < 0 ? -status : 0, inner)
{
    public RdmaCmEventType EventType { get; } = eventType;

    /// <summary>The event's status: a negative errno, or for <see cref="RdmaCmEventType.Rejected"/> the IB CM reject reason.</summary>
    public int Status { get; } = status;
}

/// <summary>The peer (or the CM on its behalf) rejected the connection request.</summary>
public sealed class RdmaConnectionRejectedException(string message, int rejectReason, ReadOnlyMemory<byte> privateData)
    : RdmaConnectionException(message, RdmaCmEventType.Rejected, rejectReason)
{
    /// <summary>The IB CM reject reason (8: no listener on that port, 28: rejected by the application).</summary>
    public int RejectReason { get; } = rejectReason;

    /// <summary>Private data the peer sent with the reject.</summary>
    public ReadOnlyMemory<byte> PrivateData { get; } = privateData;
}
