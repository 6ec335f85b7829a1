using System.Net;

namespace IserBlockd.Iscsi.ConnectionPort;

/// <summary>
/// One transport connection carrying iSCSI PDUs. Framing (padding, digests, the iSER header) is the transport's;
/// meaning is the core's.
/// <para>
/// Receive is two-step so that data lands where it belongs: <see cref="ReceiveHeaderAsync"/> returns the header;
/// the core looks at it (for a Data-In: looks up the task by ITT) and calls <see cref="ReceiveDataAsync"/> with
/// the destination, e.g. the task's buffer at the PDU's offset; TCP then reads the data segment straight from the
/// socket into it. Only one receiver and one sender at a time; sends and receives may overlap.
/// </para>
/// <para>
/// <see cref="IAsyncDisposable.DisposeAsync"/> may be called more than once, from another thread, while a receive
/// or send is pending: it must make them fail promptly (the core closes a failed connection this way).
/// </para>
/// </summary>
public interface IIscsiConnection : IAsyncDisposable
{
    IscsiTransportCapabilities Capabilities { get; }

    /// <summary>Transport-owned login keys (iSER), or null.</summary>
    ITransportLoginKeys? LoginKeys { get; }

    EndPoint? LocalEndPoint { get; }

    EndPoint? RemoteEndPoint { get; }

    /// <summary>Login is complete: from the next PDU on, the negotiated digests and limits apply.</summary>
    ValueTask StartFullFeaturePhaseAsync(FullFeaturePhaseContext context, CancellationToken cancellationToken);

    /// <summary>
    /// Queues a PDU. The transport may buffer it until <see cref="FlushAsync"/>; when the returned task completes,
    /// <see cref="OutboundPdu.Header"/> and <see cref="OutboundPdu.Data"/> may be reused by the caller.
    /// </summary>
    ValueTask SendAsync(OutboundPdu pdu, CancellationToken cancellationToken);

    /// <summary>Sends everything buffered.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Receives the next PDU header. Throws <see cref="IscsiTransportException"/> when the peer closed or the connection
    /// failed, <see cref="IscsiProtocolException"/> for malformed framing (truncated PDU, bad header digest).
    /// </summary>
    ValueTask<InboundPdu> ReceiveHeaderAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Receives the data segment of the header just received (call exactly once when its DataSegmentLength &gt; 0).
    /// With a non-empty <paramref name="destination"/> (exactly DataSegmentLength bytes) the data is placed there and
    /// the same memory is returned; otherwise the transport returns its own buffer, valid until the next
    /// <see cref="ReceiveHeaderAsync"/>. A data digest mismatch throws <see cref="IscsiDigestException"/>.
    /// </summary>
    ValueTask<ReadOnlyMemory<byte>> ReceiveDataAsync(Memory<byte> destination, CancellationToken cancellationToken);

    /// <summary>Data bytes received so far into payload pipes rather than into memory (see
    /// <c>IserBlockd.Primitives.Splicing.PayloadPipe</c>); 0 for a transport that does not splice.</summary>
    long SplicedDataBytes => 0;

    /// <summary>True when the next PDU's header is already received, so that <see cref="ReceiveHeaderAsync"/> returns it
    /// without waiting for the network. A transport that cannot tell says false.</summary>
    bool HasBufferedHeader => false;

    /// <summary>
    /// Told before the receive loop waits for the network: how many commands sent on this connection wait for nothing
    /// but the target's answer, and the bytes those answers bring if they all succeed. With many owed, a transport may
    /// hold its wake-up until a good part of them has come, for a bounded time, so that one wake-up takes several
    /// answers (TCP: SO_RCVLOWAT). The default ignores it.
    /// </summary>
    void ExpectAnswers(int answers, long bytes) { }

    /// <summary>
    /// The core is done with the task's buffer (completed, failed or aborted): release any registration. Also called
    /// for a task without a buffer that the target ended (ABORT TASK, LU reset), whose answer will never come: release
    /// whatever was reserved for that answer. Unknown tags are ignored.
    /// </summary>
    void ReleaseTask(uint initiatorTaskTag);
}
