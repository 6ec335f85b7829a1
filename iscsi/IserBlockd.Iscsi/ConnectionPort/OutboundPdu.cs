namespace IserBlockd.Iscsi.ConnectionPort;

/// <summary>
/// A PDU to send: the header (BHS plus AHS, without digest) and the data segment (without padding or digest;
/// the transport adds both). For a SCSI Command, <see cref="Task"/> describes the task's data buffer.
/// </summary>
public readonly struct OutboundPdu
{
    public OutboundPdu(ReadOnlyMemory<byte> header, ReadOnlyMemory<byte> data = default, ScsiTaskData task = default)
    {
        Header = header;
        Data = data;
        Task = task;
    }

    /// <summary>BHS and AHS. Valid only until the send completes.</summary>
    public ReadOnlyMemory<byte> Header { get; }

    /// <summary>The data segment. Part of a task buffer or a control buffer; valid until the send completes.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The task's data buffer, set on SCSI Command PDUs that move data.</summary>
    public ScsiTaskData Task { get; }
}
