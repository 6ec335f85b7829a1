namespace IserBlockd.Iscsi.Transport;

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
}
