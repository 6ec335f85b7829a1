using System.Net.Security;
using System.Runtime.CompilerServices;

namespace IserBlockd.BlockDev.Nbd.Streams;

/// <summary>
/// <see cref="INbdTransport"/> through TLS: an <see cref="SslStream"/> over the connection's own transport,
/// which it owns. Receive shutdown and abort act on the transport underneath, so a stopping server and a
/// handshake timeout work as they do in the clear.
/// </summary>
public sealed class SslStreamTransport(SslStream stream, INbdTransport inner) : INbdTransport
{
    public string RemoteDescription => inner.RemoteDescription;

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer) => stream.ReadAsync(buffer);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<int> SendAsync(ReadOnlyMemory<byte> buffer)
    {
        await stream.WriteAsync(buffer).ConfigureAwait(false);
        return buffer.Length;
    }

    public void ShutdownReceive() => inner.ShutdownReceive();

    public void Abort() => inner.Abort();

    public async ValueTask DisposeAsync()
    {
        await stream.DisposeAsync().ConfigureAwait(false);
        await inner.DisposeAsync().ConfigureAwait(false);
    }
}
