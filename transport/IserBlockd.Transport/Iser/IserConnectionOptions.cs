namespace IserBlockd.Transport.Iser;

/// <summary>
/// Sizes of one iSER connection's own resources. Every receive buffer holds a whole control PDU; there are
/// <see cref="QueueDepth"/> of them for responses to what we send plus <see cref="UnexpectedPduReserve"/> for PDUs the
/// target sends unasked, all posted before connecting. What we declare at login is exactly what we post.
/// </summary>
public sealed record IserConnectionOptions
{
    /// <summary>
    /// Requests that may await a response at once (SCSI commands, pings, task management, text, logout): one posted
    /// receive buffer each. A larger target window is used up to this depth (kernel ib_iser: 128).
    /// </summary>
    public int QueueDepth { get; init; } = 128;

    /// <summary>Receive buffers kept for unsolicited PDUs (NOP-In pings, asynchronous messages); declared as MaxOutstandingUnexpectedPDUs.</summary>
    public int UnexpectedPduReserve { get; init; } = 4;

    /// <summary>Data bytes one receive buffer holds: declared as InitiatorRecvDataSegmentLength (at least 8192, the login limit).</summary>
    public int ReceiveDataSegmentLength { get; init; } = 8192;

    /// <summary>Data bytes one send descriptor holds: offered as TargetRecvDataSegmentLength (immediate data beyond it is left to RDMA Read).</summary>
    public int SendDataSegmentLength { get; init; } = 8192;

    /// <summary>Send descriptors (the send queue depth; memory window binds and invalidates get room beside them).</summary>
    public int SendQueueDepth { get; init; } = 128;

    /// <summary>
    /// Largest data transfer of one SCSI command (the LUN splits larger requests). tgt's iSER driver moves at most
    /// 512 KiB per command and drops the connection otherwise, which is also the kernel ib_iser's default (max_sectors 1024).
    /// </summary>
    public int MaxCommandDataLength { get; init; } = 512 * 1024;

    /// <summary>Sends queued before they are posted without waiting for a flush (one doorbell per batch).</summary>
    public int PostBatch { get; init; } = 16;

    /// <summary>
    /// With memory windows: let the target end a command with Send with Invalidate of its window's key (the CM header
    /// then omits SEND_W_INV_NOT_SUP), saving the local invalidate. Off by default: shown so far only against the
    /// in-memory target; tgtd never sends it, LIO isert would. Either way a local invalidate covers what the target left.
    /// </summary>
    public bool RemoteInvalidation { get; init; }

    /// <summary>How long teardown waits for the posted work requests to flush after the disconnect.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Room for additional header segments (an extended CDB needs up to 248 bytes).</summary>
    public const int AhsRoom = 256;

    internal void Validate()
    {
        static void Range(string name, long value, long min, long max)
        {
            if (value < min || value > max) throw new ArgumentException($"{name}={value} is outside {min}..{max}", name);
        }
        Range(nameof(QueueDepth), QueueDepth, 1, 4096);
        Range(nameof(UnexpectedPduReserve), UnexpectedPduReserve, 2, 256);
        Range(nameof(ReceiveDataSegmentLength), ReceiveDataSegmentLength, 8192, 16777215);
        Range(nameof(SendDataSegmentLength), SendDataSegmentLength, 8192, 16777215);
        Range(nameof(SendQueueDepth), SendQueueDepth, 2, 4096);
        Range(nameof(PostBatch), PostBatch, 1, SendQueueDepth);
        Range(nameof(MaxCommandDataLength), MaxCommandDataLength, 4096, 1 << 30);
    }

    /// <summary>Bytes of one receive buffer: iSER header, BHS, AHS room, data.</summary>
    internal int ReceiveBufferSize => Align(IserHeader.Length + Iscsi.Pdu.BasicHeaderSegment.Length + AhsRoom + ReceiveDataSegmentLength);

    /// <summary>Bytes of one send descriptor.</summary>
    internal int SendBufferSize => Align(IserHeader.Length + Iscsi.Pdu.BasicHeaderSegment.Length + AhsRoom + SendDataSegmentLength);

    /// <summary>
    /// Send descriptors and answer buffers kept for our NOP-Out ping alone: commands never take the last one, so a
    /// ping is never held back by commands a slow target has not answered.
    /// </summary>
    internal const int PingReserve = 1;

    internal int ReceiveBufferCount => QueueDepth + UnexpectedPduReserve + PingReserve;

    /// <summary>Memory windows of a connection that uses them: one per command that may be in flight.</summary>
    internal int WindowCount => QueueDepth;

    private static int Align(int n) => (n + 63) / 64 * 64;
}
