using System.Collections.Concurrent;
using System.Net;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.ConnectionPort;

namespace IserBlockd.Iscsi.Tests.Fakes;

/// <summary>
/// A transport decorator that counts PDUs by opcode in each direction and tracks how many SCSI commands were
/// outstanding at once, to prove what really crossed the wire (R2T sequences, multi-PDU Data-In, queue depth).
/// </summary>
public sealed class RecordingTransport(IIscsiTransport inner) : IIscsiTransport
{
    private readonly ConcurrentDictionary<IscsiOpcode, int> _sent = new();
    private readonly ConcurrentDictionary<IscsiOpcode, int> _received = new();
    private readonly ConcurrentDictionary<int, int> _dataOutSizes = new();
    private int _outstanding;
    private int _maxOutstanding;

    public string Name => inner.Name;

    public int Sent(IscsiOpcode opcode) => _sent.GetValueOrDefault(opcode);
    public int Received(IscsiOpcode opcode) => _received.GetValueOrDefault(opcode);
    public int MaxOutstandingCommands => Volatile.Read(ref _maxOutstanding);
    public IReadOnlyDictionary<int, int> DataOutSizes => _dataOutSizes;
    /// <summary>The most SCSI commands that one flush (one send of what the writer gathered) carried.</summary>
    public int MaxCommandsPerFlush => Volatile.Read(ref _maxCommandsPerFlush);
    private int _commandsSinceFlush;
    private int _maxCommandsPerFlush;
    public int ImmediateDataCommands;
    public int UnsolicitedDataOuts;
    public int DataInWithStatus;

    public async ValueTask<IIscsiConnection> ConnectAsync(IscsiPortal portal, CancellationToken cancellationToken)
        => new Connection(this, await inner.ConnectAsync(portal, cancellationToken));

    private sealed class Connection(RecordingTransport owner, IIscsiConnection inner) : IIscsiConnection
    {
        public IscsiTransportCapabilities Capabilities => inner.Capabilities;
        public ITransportLoginKeys? LoginKeys => inner.LoginKeys;
        public EndPoint? LocalEndPoint => inner.LocalEndPoint;
        public EndPoint? RemoteEndPoint => inner.RemoteEndPoint;

        public ValueTask StartFullFeaturePhaseAsync(FullFeaturePhaseContext context, CancellationToken cancellationToken)
            => inner.StartFullFeaturePhaseAsync(context, cancellationToken);

        public ValueTask SendAsync(OutboundPdu pdu, CancellationToken cancellationToken)
        {
            var header = pdu.Header.Span;
            var opcode = BasicHeaderSegment.GetOpcode(header);
            owner._sent.AddOrUpdate(opcode, 1, (_, n) => n + 1);
            if (opcode == IscsiOpcode.ScsiCommand)
            {
                var now = Interlocked.Increment(ref owner._outstanding);
                int max;
                while (now > (max = Volatile.Read(ref owner._maxOutstanding)) && Interlocked.CompareExchange(ref owner._maxOutstanding, now, max) != max) { }
                if (pdu.Data.Length > 0) Interlocked.Increment(ref owner.ImmediateDataCommands);
                Interlocked.Increment(ref owner._commandsSinceFlush);
            }
            if (opcode == IscsiOpcode.DataOut)
            {
                owner._dataOutSizes.AddOrUpdate(pdu.Data.Length, 1, (_, n) => n + 1);
                if (BasicHeaderSegment.U32(header, 20) == BasicHeaderSegment.ReservedTag) Interlocked.Increment(ref owner.UnsolicitedDataOuts);
            }
            return inner.SendAsync(pdu, cancellationToken);
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            var commands = Interlocked.Exchange(ref owner._commandsSinceFlush, 0);
            int max;
            while (commands > (max = Volatile.Read(ref owner._maxCommandsPerFlush)) && Interlocked.CompareExchange(ref owner._maxCommandsPerFlush, commands, max) != max) { }
            return inner.FlushAsync(cancellationToken);
        }

        public bool HasBufferedHeader => inner.HasBufferedHeader;

        public async ValueTask<InboundPdu> ReceiveHeaderAsync(CancellationToken cancellationToken)
        {
            var pdu = await inner.ReceiveHeaderAsync(cancellationToken);
            owner._received.AddOrUpdate(pdu.Opcode, 1, (_, n) => n + 1);
            var header = pdu.Header.Span;
            if (pdu.Opcode == IscsiOpcode.ScsiResponse || (pdu.Opcode == IscsiOpcode.DataIn && (header[1] & 1) != 0))
            {
                Interlocked.Decrement(ref owner._outstanding);
                if (pdu.Opcode == IscsiOpcode.DataIn) Interlocked.Increment(ref owner.DataInWithStatus);
            }
            return pdu;
        }

        public ValueTask<ReadOnlyMemory<byte>> ReceiveDataAsync(Memory<byte> destination, CancellationToken cancellationToken)
            => inner.ReceiveDataAsync(destination, cancellationToken);

        public void ReleaseTask(uint initiatorTaskTag) => inner.ReleaseTask(initiatorTaskTag);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
