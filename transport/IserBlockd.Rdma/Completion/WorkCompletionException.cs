using System.Runtime.InteropServices;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma.Completion;

/// <summary>A work request completed with an error status.</summary>
public sealed class WorkCompletionException(string message, IbvWcStatus status, uint vendorError)
    : RdmaException(message)
{
    public IbvWcStatus Status { get; } = status;

    public uint VendorError { get; } = vendorError;

    /// <summary>Throws if <paramref name="completion"/> failed, naming the operation and rdma-core's status text.</summary>
    public static void ThrowIfFailed(in IbvWc completion, string operation)
    {
        if (completion.Status != IbvWcStatus.Success)
            throw new WorkCompletionException(
                $"{operation} failed: {Describe(completion.Status)} (vendor error 0x{completion.VendorError:x})",
                completion.Status, completion.VendorError);
    }

    /// <summary>"remote access error (IBV_WC_REM_ACCESS_ERR)" style text for a status.</summary>
    public static string Describe(IbvWcStatus status) => status switch
    {
        IbvWcStatus.Success => "success",
        IbvWcStatus.LocalLengthError => "local length error: the message is longer than the posted receive buffer",
        IbvWcStatus.LocalProtectionError => "local protection error: an SGE names memory not registered with its lkey",
        IbvWcStatus.WorkRequestFlushError => "flushed: the queue pair went to the error state (disconnect or an earlier failure)",
        IbvWcStatus.RemoteAccessError => "remote access error: the peer refused the rkey/address range",
        IbvWcStatus.RemoteInvalidRequestError => "remote invalid request: the peer could not accept the operation (no receive posted, length too long)",
        IbvWcStatus.RemoteOperationError => "remote operation error",
        IbvWcStatus.RetryExceededError => "transport retry counter exceeded: the peer stopped answering",
        IbvWcStatus.RnrRetryExceededError => "receiver-not-ready retry counter exceeded: the peer posted no receive buffer",
        IbvWcStatus.FatalError => "fatal device error",
        _ => StatusText(status),
    };

    private static unsafe string StatusText(IbvWcStatus status)
    {
        try
        {
            var text = LibIbverbs.ibv_wc_status_str(status);
            return text == null ? $"status {(int)status}" : Marshal.PtrToStringUTF8((IntPtr)text) ?? $"status {(int)status}";
        }
        catch (DllNotFoundException)
        {
            return $"status {(int)status}";
        }
    }
}
