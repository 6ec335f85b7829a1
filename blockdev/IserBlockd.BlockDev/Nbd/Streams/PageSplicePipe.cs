using IserBlockd.Primitives.Splicing;

namespace IserBlockd.BlockDev.Nbd.Streams;

/// <summary>
/// Moves a payload into a socket without copying it: <c>vmsplice</c> puts references to the payload's pages into a
/// pipe and <c>splice</c> moves them on into the socket, where a Unix socket keeps them as page references until
/// the peer reads them (the peer's read is then the only copy). The pipe is empty between calls: what the socket
/// does not take now is dropped from the pipe, and the caller sends those bytes the ordinary way.
/// </summary>
internal sealed unsafe class PageSplicePipe(PayloadPipe pipe) : IDisposable
{
    /// <summary>A pipe of 1 MiB (the unprivileged default of fs.pipe-max-size), or of 64 KiB where that is lowered
    /// (more calls per payload), or null when the system gives none (the caller then copies).</summary>
    public static PageSplicePipe? TryCreate() =>
        PayloadPipe.TryCreate(64 << 10, wanted: 1 << 20) is { } pipe ? new PageSplicePipe(pipe) : null;

    /// <summary>Sends from <paramref name="data"/> into the non-blocking socket <paramref name="socketFd"/> what it
    /// takes now, by page reference; returns how many bytes. Failures of the socket throw.</summary>
    public int Send(int socketFd, byte* data, int length)
    {
        if (pipe.IsBroken) return 0;
        var sent = 0;
        while (sent < length)
        {
            var queued = pipe.AppendPages(data + sent, Math.Min(length - sent, pipe.Capacity));
            if (queued == 0) return sent;
            int moved;
            try
            {
                moved = pipe.SpliceTo(socketFd);
            }
            finally
            {
                // Pages the socket did not take were not sent, and the next payload must not follow them.
                if (pipe.Length > 0) pipe.Clear();
            }
            sent += moved;
            if (moved < queued) return sent;
        }
        return sent;
    }

    public void Dispose() => pipe.Dispose();
}
