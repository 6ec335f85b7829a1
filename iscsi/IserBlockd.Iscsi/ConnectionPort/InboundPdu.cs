using IserBlockd.Iscsi.Pdu;

namespace IserBlockd.Iscsi.ConnectionPort;

/// <summary>
/// The header of a received PDU: BHS followed by its AHS, header digest already checked and removed.
/// The data segment (if <see cref="DataSegmentLength"/> &gt; 0) is still to be received with
/// <see cref="IIscsiConnection.ReceiveDataAsync"/>, which lets the core pick where it lands.
/// </summary>
public readonly struct InboundPdu
{
    public InboundPdu(ReadOnlyMemory<byte> header) => Header = header;

    /// <summary>BHS + AHS; valid until the next <see cref="IIscsiConnection.ReceiveHeaderAsync"/>.</summary>
    public ReadOnlyMemory<byte> Header { get; }

    public IscsiOpcode Opcode => BasicHeaderSegment.GetOpcode(Header.Span);

    public int DataSegmentLength => BasicHeaderSegment.GetDataSegmentLength(Header.Span);

    public uint InitiatorTaskTag => BasicHeaderSegment.GetInitiatorTaskTag(Header.Span);
}
