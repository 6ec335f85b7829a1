using System.Threading.Channels;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.RdmaProbe;

/// <summary>
/// Receive buffers posted ahead: each completed receive is copied out and its buffer re-posted at once (on the
/// event loop thread), so the peer never meets an empty receive queue. A flush (disconnect) ends the stream.
/// </summary>
internal sealed class ReceiveRing
{
    private readonly Channel<byte[]> _messages = Channel.CreateUnbounded<byte[]>();
    private readonly QueuePair _queuePair;
    private readonly Slot[] _slots;

    public ReceiveRing(QueuePair queuePair, WorkRequestTable table, IReadOnlyList<RegisteredBuffer> buffers)
    {
        _queuePair = queuePair;
        _slots = buffers.Select(b => new Slot(this, b)).ToArray();
        foreach (var slot in _slots) slot.WorkRequestId = table.Add(slot);
    }

    public void PostAll()
    {
        foreach (var slot in _slots) slot.Post();
    }

    /// <summary>The next message; throws <see cref="ChannelClosedException"/> once the connection is gone.</summary>
    public ValueTask<byte[]> ReadAsync(CancellationToken cancellationToken) => _messages.Reader.ReadAsync(cancellationToken);

    private sealed class Slot(ReceiveRing ring, RegisteredBuffer buffer) : IWorkCompletionHandler
    {
        public ulong WorkRequestId;

        public unsafe void Post()
        {
            var sge = buffer.Segment.ToSge();
            var wr = new IbvRecvWr { WorkRequestId = WorkRequestId, ScatterGatherList = &sge, ScatterGatherCount = 1 };
            ring._queuePair.PostReceive(&wr);
        }

        public void OnWorkCompletion(in IbvWc completion)
        {
            if (completion.Status == IbvWcStatus.WorkRequestFlushError)
            {
                ring._messages.Writer.TryComplete();
                return;
            }
            if (completion.Status != IbvWcStatus.Success)
            {
                ring._messages.Writer.TryComplete(new WorkCompletionException(
                    $"receive failed: {WorkCompletionException.Describe(completion.Status)}", completion.Status, completion.VendorError));
                return;
            }
            var message = buffer.Memory.Span[..(int)completion.ByteLength].ToArray();
            ring._messages.Writer.TryWrite(message);
            try
            {
                Post();
            }
            catch (RdmaException e)
            {
                ring._messages.Writer.TryComplete(e); // the QP went to error between the completion and the re-post
            }
        }
    }
}
