using System.Buffers;
using System.IO.Pipelines;
using IserBlockd.BlockDev.Nbd.Streams;

namespace IserBlockd.BlockDev.Tests.Support;

/// <summary>
/// An in-memory <see cref="INbdTransport"/> over two pipes (no sockets), so protocol behaviour can be
/// tested on its own — the Kestrel way of swapping the transport. <see cref="CreatePair"/> gives the
/// server end and a client end that tests drive as a stream.
/// </summary>
internal sealed class PipeTransport(PipeReader input, PipeWriter output, string name) : INbdTransport
{
    public static (PipeTransport Server, Stream Client) CreatePair()
    {
        var toServer = new Pipe();
        var toClient = new Pipe();
        return (new PipeTransport(toServer.Reader, toClient.Writer, "pipe client"),
                new DuplexPipeStream(toClient.Reader, toServer.Writer));
    }

    private volatile bool _receiveShut;

    public string RemoteDescription => name;

    public async ValueTask<int> ReceiveAsync(Memory<byte> buffer)
    {
        if (_receiveShut) return 0;
        var result = await input.ReadAsync();
        if (_receiveShut)
        {
            input.AdvanceTo(result.Buffer.Start);
            return 0;
        }
        if (result.Buffer.IsEmpty && (result.IsCompleted || result.IsCanceled))
        {
            input.AdvanceTo(result.Buffer.End);
            return 0;
        }
        var count = (int)Math.Min(buffer.Length, result.Buffer.Length);
        result.Buffer.Slice(0, count).CopyTo(buffer.Span);
        input.AdvanceTo(result.Buffer.GetPosition(count));
        return count;
    }

    public async ValueTask<int> SendAsync(ReadOnlyMemory<byte> buffer)
    {
        await output.WriteAsync(buffer);
        return buffer.Length;
    }

    public void ShutdownReceive()
    {
        _receiveShut = true;
        input.CancelPendingRead();
    }

    public void Abort()
    {
        _receiveShut = true;
        input.CancelPendingRead();
        output.Complete(new IOException("aborted"));
    }

    public ValueTask DisposeAsync()
    {
        input.Complete();
        output.Complete();
        return ValueTask.CompletedTask;
    }

    private sealed class DuplexPipeStream(PipeReader reader, PipeWriter writer) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var result = await reader.ReadAsync(cancellationToken);
            if (result.Buffer.IsEmpty && result.IsCompleted) return 0;
            var count = (int)Math.Min(buffer.Length, result.Buffer.Length);
            result.Buffer.Slice(0, count).CopyTo(buffer.Span);
            reader.AdvanceTo(result.Buffer.GetPosition(count));
            return count;
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            await writer.WriteAsync(buffer, cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            reader.Complete();
            writer.Complete();
            base.Dispose(disposing);
        }
    }
}
