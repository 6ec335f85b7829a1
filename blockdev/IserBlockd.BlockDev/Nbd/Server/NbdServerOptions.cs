namespace IserBlockd.BlockDev.Nbd;

public sealed record NbdServerOptions
{
    /// <summary>Requests one connection may have in progress; beyond it the reader stops reading the socket
    /// (back-pressure, not an error). 128 is the queue depth the kernel's nbd driver gives each socket.</summary>
    public int MaxRequestsInFlight { get; init; } = 128;

    /// <summary>READ and WRITE payload bytes one connection may hold in buffers at once; beyond it the reader
    /// stops reading the socket until replies have left. A request larger than this is admitted alone.
    /// Two requests of the largest size (32 MiB) by default. A client connection gets less where its export's
    /// buffer pool is smaller (<see cref="Buffers.BufferPoolShares.PerConnection"/>).</summary>
    public long MaxBytesInFlight { get; init; } = 64L << 20;

    /// <summary>A reply send that makes no progress for this long means the client stopped reading: it is
    /// disconnected and its buffers return. A client must take up a whole reply within it (32 MiB at
    /// about 1.1 MB/s for the default). <see cref="Timeout.InfiniteTimeSpan"/>: never.</summary>
    public TimeSpan SendTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Per-connection buffer that request headers (and small WRITE payloads) arrive in.</summary>
    public int ReceiveBufferSize { get; init; } = 256 << 10;

    /// <summary>Per-connection buffer in which reply headers (and small READ payloads) are gathered,
    /// so that many replies leave in one send.</summary>
    public int SendBufferSize { get; init; } = 256 << 10;

    /// <summary>WRITE payloads up to this size are copied out of the receive buffer (a memcpy is cheaper than a
    /// system call); larger ones are received into the device's buffer directly. READ replies leave from the device's
    /// buffers in one gathered send whatever their size, except over TLS, where payloads up to this size are copied
    /// into the send buffer.</summary>
    public int CopyThreshold { get; init; } = 16 << 10;

    /// <summary>On a Unix socket (a local client, or the kernel's NBD socket), READ payloads this long or longer
    /// leave by page reference (vmsplice + splice) instead of being copied into the socket; their buffers are
    /// kept until the client has read them (SIOCOUTQ). 0 turns it off. Measured against tgtd (fio random reads at
    /// QD32, CPU per I/O): 64 KiB 36-43 us by reference against 44-52 us copied; 32 KiB 23.5-26 against 21-24, where
    /// the two extra system calls cost more than the copy.</summary>
    public int SendPagesThreshold { get; init; } = 64 << 10;

    /// <summary>Polls the daemon's sockets for a while instead of sleeping when at most one request is in flight in
    /// the whole daemon (<see cref="Primitives.Polling.LowDepthPoller"/>): queue depth one pays a wake-up per hop
    /// otherwise. One poller is shared by every NBD server and iSCSI TCP connection of the daemon; off by default
    /// here, the daemon's configuration turns it on (<c>lowDepthPollMicroseconds</c>).</summary>
    public Primitives.Polling.LowDepthPoller LowDepthPoller { get; init; } = Primitives.Polling.LowDepthPoller.Off;

    /// <summary>SO_SNDBUF for accepted and handed-in sockets (null: the system default). The kernel caps
    /// it at net.core.wmem_max.</summary>
    public int? SocketSendBufferBytes { get; init; } = 4 << 20;

    /// <summary>SO_RCVBUF for accepted and handed-in sockets (null: the system default). The kernel caps
    /// it at net.core.rmem_max.</summary>
    public int? SocketReceiveBufferBytes { get; init; } = 4 << 20;

    /// <summary>Refuse clients that do not ask for NBD_INFO_BLOCK_SIZE when the export's minimum block
    /// size is above 1 (NBD_REP_ERR_BLOCK_SIZE_REQD for INFO/GO, a hard disconnect for EXPORT_NAME).
    /// Off by default: such clients are served, and unaligned requests get EINVAL.</summary>
    public bool RequireBlockSizeNegotiation { get; init; }

    /// <summary>A refused WRITE's payload up to this size is read and dropped so the connection can go
    /// on; a larger one is treated as a denial of service and the client is disconnected.</summary>
    public long MaxDiscardedPayload { get; init; } = 64L << 20;

    /// <summary>NBD over TLS (NBD_OPT_STARTTLS); null: the option is refused and everything is in the clear.</summary>
    public NbdTlsOptions? Tls { get; init; }

    /// <summary>Time a client has to finish option haggling (the TLS handshake included); one that connects
    /// and sends nothing is dropped after it. libnbd, qemu and the kernel finish in milliseconds.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>When the server stops, how long a connection may take to deliver the replies of requests
    /// already started before it is cut off (a client that stopped reading would otherwise hold it
    /// forever). Requests still at the device are always waited for.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Options one client may send before it is considered abusive and disconnected.</summary>
    public int MaxOptions { get; init; } = 256;

    /// <summary>Longest option data accepted; longer gets NBD_REP_ERR_TOO_BIG.</summary>
    public int MaxOptionLength { get; init; } = 64 << 10;

    internal void Validate()
    {
        if (MaxRequestsInFlight < 1) throw new ArgumentOutOfRangeException(nameof(MaxRequestsInFlight));
        if (MaxBytesInFlight < 1) throw new ArgumentOutOfRangeException(nameof(MaxBytesInFlight));
        if (SendTimeout <= TimeSpan.Zero && SendTimeout != Timeout.InfiniteTimeSpan) throw new ArgumentOutOfRangeException(nameof(SendTimeout));
        if (HandshakeTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(HandshakeTimeout));
        if (ReceiveBufferSize < 4096) throw new ArgumentOutOfRangeException(nameof(ReceiveBufferSize), "At least 4 KiB.");
        if (SendBufferSize < 4096) throw new ArgumentOutOfRangeException(nameof(SendBufferSize), "At least 4 KiB.");
        if (CopyThreshold < 0 || CopyThreshold > SendBufferSize / 2 || CopyThreshold > ReceiveBufferSize / 2)
            throw new ArgumentOutOfRangeException(nameof(CopyThreshold), "At most half of each connection buffer.");
        if (MaxOptionLength < 4096 + 64) throw new ArgumentOutOfRangeException(nameof(MaxOptionLength));
    }
}
