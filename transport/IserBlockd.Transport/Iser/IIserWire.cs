using System.Net;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Transport.Iser;

/// <summary>
/// The RDMA side of one iSER connection as <see cref="IserConnection"/> uses it: post work requests on the queue
/// pair, and close it all down. Completions come back through the connection's <see cref="Rdma.Completion.WorkRequestTable"/>.
/// <see cref="RdmaWire"/> is the real one (rdma-core); unit tests use an in-memory fake that plays the target, so
/// the protocol logic runs without hardware (as Kestrel's tests swap in an in-memory transport).
/// </summary>
internal unsafe interface IIserWire
{
    EndPoint? LocalEndPoint { get; }

    EndPoint? RemoteEndPoint { get; }

    /// <summary>Posts a chain of send work requests; 0 or the errno of the first refused one.</summary>
    int PostSend(IbvSendWr* chain);

    /// <summary>Posts a chain of receive work requests; 0 or the errno.</summary>
    int PostReceive(IbvRecvWr* chain);

    /// <summary>Starts the orderly disconnect: the queue pair goes to the error state and posted work requests flush.</summary>
    void Disconnect();

    /// <summary>Destroys what the queue pair needs, in rdma-core's order (after the flushes are in or the drain timed out).</summary>
    ValueTask DestroyAsync();
}

/// <summary>Where the data buffers of SCSI tasks come from and how they are known to the target.</summary>
internal interface IIserTaskMemory
{
    /// <summary>
    /// True when <paramref name="memory"/> lies in memory registered on this connection's protection domain;
    /// <paramref name="region"/> is that registration's <c>ibv_mr*</c> (what a memory window is bound over).
    /// </summary>
    bool TryGetRegistered(ReadOnlyMemory<byte> memory, out Rdma.RdmaSegment segment, out IntPtr region);

    /// <summary>The <c>ibv_mr*</c> of the registration that holds <paramref name="segment"/> (a bounce buffer's).</summary>
    IntPtr RegionOf(in Rdma.RdmaSegment segment);

    /// <summary>Rents a registered bounce buffer of exactly <paramref name="length"/> bytes (waits when all are out).</summary>
    ValueTask<Rdma.RegisteredBuffer> RentBounceAsync(int length, CancellationToken cancellationToken);

    /// <summary>The largest bounce buffer there is.</summary>
    int MaxBounceLength { get; }

    /// <summary>
    /// Pins and registers caller memory for one command (the slow path, for buffers larger than any bounce buffer).
    /// Disposing the result deregisters and unpins it.
    /// </summary>
    IDisposable RegisterPinned(Memory<byte> memory, out Rdma.RdmaSegment segment, out IntPtr region);

    /// <summary>
    /// Memory windows for a connection's commands, or null when the registrations themselves grant remote access
    /// (a device without type 2 windows, or windows turned off).
    /// </summary>
    ICommandWindows? CreateWindows(int count);
}
