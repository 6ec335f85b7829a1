namespace IserBlockd.Transport.Tcp;

/// <summary>Socket settings of the TCP transport.</summary>
public sealed record TcpTransportOptions
{
    /// <summary>Kernel socket buffer sizes (0 leaves the system default, which autotunes).</summary>
    public int SocketReceiveBufferSize { get; init; }
    public int SocketSendBufferSize { get; init; }

    /// <summary>TCP keepalive, so that a vanished peer is noticed even without NOP-Out pings.</summary>
    public bool KeepAlive { get; init; } = true;

    /// <summary>Our own receive buffer for headers and small data segments; larger segments bypass it.</summary>
    public int ReceiveBufferSize { get; init; } = 64 * 1024;

    /// <summary>Send coalescing buffer; data segments above <see cref="CopyThreshold"/> are written straight from the caller's memory.</summary>
    public int SendBufferSize { get; init; } = 64 * 1024;

    public int CopyThreshold { get; init; } = 16 * 1024;

    /// <summary>With at least this many commands owed an answer (or READs of 64 KiB or more, at any depth), the receive
    /// loop's wake-up is held until half the bytes of their answers have come (SO_RCVLOWAT, <see cref="ReceiveCoalescing"/>);
    /// 0 turns this off. Well above QD1.</summary>
    public int ReceiveCoalescingMinAnswers { get; init; } = 16;

    /// <summary>The longest a held wake-up waits when answers do not come as expected (failed READs, a stalled
    /// target) before the loop takes what is there. Answers that come end a hold long before.</summary>
    public TimeSpan ReceiveCoalescingWindow { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Polled by the I/O thread at queue depth one instead of sleeping (the NBD server's, shared; see
    /// <see cref="Primitives.Polling.LowDepthPoller"/>): full-feature connections register their socket with it.</summary>
    public Primitives.Polling.LowDepthPoller LowDepthPoller { get; init; } = Primitives.Polling.LowDepthPoller.Off;
}
