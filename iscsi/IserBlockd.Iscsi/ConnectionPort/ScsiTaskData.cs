namespace IserBlockd.Iscsi.ConnectionPort;

/// <summary>
/// The data buffer of a SCSI task, handed to the transport with the task's SCSI Command PDU. The memory is the
/// caller's own (never copied by the core): an RDMA transport can find its registration with
/// <c>MemoryMarshal.TryGetMemoryManager</c> and advertise STag/VA. The buffer stays valid until the core calls
/// <see cref="IIscsiConnection.ReleaseTask"/> for <see cref="InitiatorTaskTag"/>.
/// </summary>
public readonly struct ScsiTaskData
{
    public ScsiTaskData(uint initiatorTaskTag, Memory<byte> buffer, int readLength, int writeLength, int unsolicitedLength)
    {
        InitiatorTaskTag = initiatorTaskTag;
        Buffer = buffer;
        ReadLength = readLength;
        WriteLength = writeLength;
        UnsolicitedLength = unsolicitedLength;
    }

    public uint InitiatorTaskTag { get; }

    /// <summary>The whole data buffer of the task (read destination or write source).</summary>
    public Memory<byte> Buffer { get; }

    /// <summary>Bytes the target will send us (READ).</summary>
    public int ReadLength { get; }

    /// <summary>Bytes the target will take from us (WRITE).</summary>
    public int WriteLength { get; }

    /// <summary>
    /// Leading bytes of the write that the core sends itself as immediate data and unsolicited Data-Out;
    /// the rest, from this offset on, is for the target to fetch (iSER: write VA = buffer + this).
    /// </summary>
    public int UnsolicitedLength { get; }

    public bool IsEmpty => ReadLength == 0 && WriteLength == 0;
}
