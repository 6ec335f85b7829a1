using System.Net;
using IserBlockd.Iscsi.ConnectionPort;

namespace IserBlockd.Benchmarks.Iscsi;

/// <summary>
/// An <see cref="IIscsiConnection"/> whose far end is a <see cref="MemoryDiskTarget"/> in the same process: what the
/// initiator sends is handed to the target at once, what the target answers waits in an <see cref="InboundPduQueue"/>
/// until the initiator flushes (bytes leave a socket when sent) and is then received as from a socket: headers
/// first, data segments copied into the destination the initiator names (for Data-In, the caller's read buffer).
/// No digests and no padding: there is no wire to protect or align.
/// </summary>
internal sealed class InMemoryIscsiConnection : IIscsiConnection
{
    private readonly InboundPduQueue _inbound;
    private readonly MemoryDiskTarget _target;

    public InMemoryIscsiConnection(byte[] disk, int blockSize)
    {
        _inbound = new InboundPduQueue(slots: 2 * MemoryDiskTarget.CommandWindow + 16, segmentCapacity: 16384);
        _target = new MemoryDiskTarget(disk, blockSize, _inbound);
    }

    public IscsiTransportCapabilities Capabilities => IscsiTransportCapabilities.None;

    public ITransportLoginKeys? LoginKeys => null;

    public EndPoint? LocalEndPoint => null;

    public EndPoint? RemoteEndPoint => null;

    public ValueTask StartFullFeaturePhaseAsync(FullFeaturePhaseContext context, CancellationToken cancellationToken) => default;

    public ValueTask SendAsync(OutboundPdu pdu, CancellationToken cancellationToken)
    {
        _target.OnPdu(pdu.Header.Span, pdu.Data.Span);
        return default;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        _inbound.Publish();
        return default;
    }

    public bool HasBufferedHeader => _inbound.HasPublished;

    // Cancellation is not watched: the core ends a receive by disposing the connection, which fails it.
    public ValueTask<InboundPdu> ReceiveHeaderAsync(CancellationToken cancellationToken) => _inbound.ReceiveHeaderAsync();

    public ValueTask<ReadOnlyMemory<byte>> ReceiveDataAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        var data = _inbound.CurrentData;
        if (destination.IsEmpty) return new ValueTask<ReadOnlyMemory<byte>>(data);
        if (destination.Length != data.Length)
            throw new ArgumentException($"the destination holds {destination.Length} bytes, the data segment has {data.Length}", nameof(destination));
        data.CopyTo(destination);
        return new ValueTask<ReadOnlyMemory<byte>>(destination);
    }

    public void ReleaseTask(uint initiatorTaskTag)
    {
        // Nothing is registered: the target never holds on to a task's buffer.
    }

    public ValueTask DisposeAsync()
    {
        _inbound.Fail(new IscsiTransportException("connection closed"));
        return default;
    }
}
