using IserBlockd.BlockDev.Nbd.Streams;

namespace IserBlockd.Fuzz;

/// <summary>An NBD client that sends exactly the fuzz input, in small pieces, then closes; replies are dropped.</summary>
public sealed class MemoryNbdTransport(byte[] input, int chunk) : INbdTransport
{
    private int _position;
    private volatile bool _closed;
    private volatile bool _aborted;

    public string RemoteDescription => "fuzz";

    public ValueTask<int> ReceiveAsync(Memory<byte> buffer)
    {
        if (_closed || _aborted) return ValueTask.FromResult(0);
        var n = Math.Min(Math.Min(buffer.Length, chunk), input.Length - _position);
        input.AsSpan(_position, n).CopyTo(buffer.Span);
        _position += n;
        return ValueTask.FromResult(n);
    }

    public ValueTask<int> SendAsync(ReadOnlyMemory<byte> buffer) =>
        _aborted ? ValueTask.FromException<int>(new IOException("aborted")) : ValueTask.FromResult(buffer.Length);

    public void ShutdownReceive() => _closed = true;

    public void Abort() => _aborted = true;

    public ValueTask DisposeAsync()
    {
        _aborted = true;
        return ValueTask.CompletedTask;
    }
}
