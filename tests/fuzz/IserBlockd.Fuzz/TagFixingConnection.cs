using System.Buffers.Binary;
using System.Net;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.ConnectionPort;

namespace IserBlockd.Fuzz;

/// <summary>
/// Wraps the real TCP framing over the fuzz input and copies the Initiator Task Tag of the request we last sent
/// into each answer (Login, Text, Logout, SCSI Response, Data-In), as the fuzzer's checksum fix-up: our tags are
/// random, and without this every mutated input would stop at the tag check instead of reaching the parsers.
/// </summary>
public sealed class TagFixingConnection(IIscsiConnection inner) : IIscsiConnection
{
    private readonly byte[] _header = new byte[48 + 255 * 4];
    private uint _lastTag;

    public IscsiTransportCapabilities Capabilities => inner.Capabilities;
    public ITransportLoginKeys? LoginKeys => inner.LoginKeys;
    public EndPoint? LocalEndPoint => inner.LocalEndPoint;
    public EndPoint? RemoteEndPoint => inner.RemoteEndPoint;

    public ValueTask StartFullFeaturePhaseAsync(FullFeaturePhaseContext context, CancellationToken cancellationToken) =>
        inner.StartFullFeaturePhaseAsync(context, cancellationToken);

    public ValueTask SendAsync(OutboundPdu pdu, CancellationToken cancellationToken)
    {
        var tag = BasicHeaderSegment.GetInitiatorTaskTag(pdu.Header.Span);
        if (tag != 0xffff_ffff) _lastTag = tag;
        return inner.SendAsync(pdu, cancellationToken);
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public async ValueTask<InboundPdu> ReceiveHeaderAsync(CancellationToken cancellationToken)
    {
        var pdu = await inner.ReceiveHeaderAsync(cancellationToken).ConfigureAwait(false);
        var length = pdu.Header.Length;
        pdu.Header.Span.CopyTo(_header);
        if (pdu.Opcode is IscsiOpcode.LoginResponse or IscsiOpcode.TextResponse or IscsiOpcode.LogoutResponse
            or IscsiOpcode.ScsiResponse or IscsiOpcode.DataIn)
            BinaryPrimitives.WriteUInt32BigEndian(_header.AsSpan(16), _lastTag);
        return new InboundPdu(_header.AsMemory(0, length));
    }

    public ValueTask<ReadOnlyMemory<byte>> ReceiveDataAsync(Memory<byte> destination, CancellationToken cancellationToken) =>
        inner.ReceiveDataAsync(destination, cancellationToken);

    public void ReleaseTask(uint initiatorTaskTag) => inner.ReleaseTask(initiatorTaskTag);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
