namespace IserBlockd.Iscsi;

/// <summary>Base of every error the iSCSI core reports. Messages are one line, fit for a log or a CLI.</summary>
public class IscsiException : Exception
{
    public IscsiException(string message) : base(message) { }
    public IscsiException(string message, Exception? inner) : base(message, inner) { }
}

/// <summary>The target sent something that breaks RFC 7143 (bad header, unknown opcode, unknown task,
/// digest mismatch, oversized data segment, ...). The connection it arrived on is failed.</summary>
public class IscsiProtocolException : IscsiException
{
    public IscsiProtocolException(string message) : base(message) { }
    public IscsiProtocolException(string message, Exception? inner) : base(message, inner) { }
}

/// <summary>A header or data digest did not match the CRC32C of what arrived.</summary>
public sealed class IscsiDigestException : IscsiProtocolException
{
    public IscsiDigestException(string message) : base(message) { }
}

/// <summary>
/// The connection carrying a command went away (closed by the target, network error, protocol error) before the
/// command completed. Block I/O is idempotent, so a session reinstatement may re-issue the command.
/// </summary>
public sealed class IscsiConnectionLostException : IscsiException
{
    public IscsiConnectionLostException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>The session was logged out or disposed while the operation was pending or before it started.</summary>
public sealed class IscsiSessionClosedException : IscsiException
{
    public IscsiSessionClosedException(string message) : base(message) { }
}

/// <summary>The target rejected one of our PDUs with a Reject PDU (RFC 7143 §11.17) that fails just that task.</summary>
public sealed class IscsiCommandRejectedException : IscsiException
{
    public IscsiCommandRejectedException(Pdu.RejectReason reason, Pdu.IscsiOpcode rejected)
        : base($"target rejected the {rejected} PDU: {reason}")
    {
        Reason = reason;
    }

    public Pdu.RejectReason Reason { get; }
}

/// <summary>
/// A SCSI command passed its command timeout and the target ended it (ABORT TASK or LOGICAL UNIT RESET), and it was
/// not re-issued (not block I/O, or timed out too often).
/// </summary>
public sealed class IscsiCommandTimeoutException : IscsiException
{
    public IscsiCommandTimeoutException(string message) : base(message) { }
}
