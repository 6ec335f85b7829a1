using IserBlockd.Primitives.Splicing;

namespace IserBlockd.BlockDev.Nbd.Streams;

/// <summary>
/// A connected byte stream that carries one NBD connection. The protocol code never touches sockets;
/// it only receives into and sends from memory it owns (or the device's buffers), so WRITE payloads can
/// land straight in device memory and READ data can leave from it.
/// </summary>
/// <remarks>Receive calls come from one reader at a time and send calls from one writer at a time, but
/// a receive and a send may be in progress together.</remarks>
public interface INbdTransport : IAsyncDisposable
{
    /// <summary>Where the peer is, for log messages.</summary>
    string RemoteDescription { get; }

    /// <summary>Receives at least one byte into <paramref name="buffer"/>; 0 means the peer closed its side
    /// (or <see cref="ShutdownReceive"/> was called).</summary>
    ValueTask<int> ReceiveAsync(Memory<byte> buffer);

    /// <summary>Sends at least one byte of <paramref name="buffer"/> (normally all of it) and returns how
    /// many; the caller sends the rest. Failures throw.</summary>
    ValueTask<int> SendAsync(ReadOnlyMemory<byte> buffer);

    /// <summary>True when <see cref="SendGatheredNow"/> works: several buffers leave in one system call, so
    /// replies are sent from the buffers their payloads were read into instead of being copied together.</summary>
    bool CanSendGathered => false;

    /// <summary>The most buffers one <see cref="SendGatheredNow"/> takes (the kernel's iovec limit is 1024).</summary>
    const int MaxGatheredSegments = 128;

    /// <summary>Sends from <paramref name="segments"/>, in order, as many bytes as the connection takes at once
    /// without waiting, and returns how many (0: none now; <see cref="SendAsync"/> waits for room). The buffers
    /// are only read during the call. Failures throw. Only when <see cref="CanSendGathered"/>.</summary>
    int SendGatheredNow(ReadOnlySpan<ReadOnlyMemory<byte>> segments) => throw new NotSupportedException();

    /// <summary>True when <see cref="SendPagesNow"/> works (a Unix socket): a READ payload leaves by reference to its
    /// memory's pages instead of being copied into the socket.</summary>
    bool CanSendPages => false;

    /// <summary>Sends as much of <paramref name="payload"/> as the connection takes now without waiting, by reference
    /// to its pages (<c>vmsplice</c> into a pipe, <c>splice</c> into the socket), and returns how many bytes (0: none
    /// now, or this transport cannot; the caller sends the rest the ordinary way). The memory must not move or
    /// change until <see cref="UnreadBytes"/> shows the peer has read past it. Only when <see cref="CanSendPages"/>.</summary>
    int SendPagesNow(ReadOnlyMemory<byte> payload) => 0;

    /// <summary>Moves what <paramref name="pipe"/> holds (a READ payload spliced there from the target's socket) into
    /// the connection, as much as it takes now without waiting, and returns how many bytes (0: none now, or this
    /// transport cannot; the caller sends the rest from the buffer). The pages pass by reference: nothing is lent,
    /// since the pipe's pages belong to no buffer of ours. Only when <see cref="CanSendPipes"/>.</summary>
    int SendPipeNow(PayloadPipe pipe) => 0;

    /// <summary>True when <see cref="SendPipeNow"/> works: any plain socket, TCP too (the pipe's pages are the kernel's,
    /// so no loan has to wait for the peer's read).</summary>
    bool CanSendPipes => false;

    /// <summary>What was sent and the peer has not read yet, in the kernel's own accounting (SIOCOUTQ), which
    /// counts at least every byte still queued; -1 when unknown.</summary>
    long UnreadBytes => -1;

    /// <summary>Stops receiving: a pending or later receive returns 0. Sends still work, so in-flight
    /// replies can be delivered before closing.</summary>
    void ShutdownReceive();

    /// <summary>Hard disconnect: pending and later operations fail.</summary>
    void Abort();
}
