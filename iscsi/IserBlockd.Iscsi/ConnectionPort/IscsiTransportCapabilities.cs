namespace IserBlockd.Iscsi.ConnectionPort;

/// <summary>What a connection does beyond carrying PDUs.</summary>
[Flags]
public enum IscsiTransportCapabilities
{
    None = 0,

    /// <summary>
    /// The transport moves SCSI data itself (iSER: the target RDMA-Reads write data and RDMA-Writes read data into
    /// the task's buffer). The core then sends no solicited Data-Out and expects no R2T and no Data-In; immediate
    /// and unsolicited data still go as PDUs within the negotiated limits. The transport finds each task's buffer
    /// in <see cref="OutboundPdu.Task"/> of its SCSI Command PDU.
    /// </summary>
    PlacesScsiData = 1,

    /// <summary>
    /// The transport takes a NOP-Out ping (<see cref="IIscsiConnection.SendAsync"/> then
    /// <see cref="IIscsiConnection.FlushAsync"/>) from a second caller while the writer's own send waits, and keeps the
    /// resources a ping needs apart from what commands use up. The core then sends its pings beside the writer, so a
    /// writer blocked on a slow target never delays the liveness probe (iSER: a send waits for receive credits).
    /// </summary>
    ConcurrentPing = 2,
}
