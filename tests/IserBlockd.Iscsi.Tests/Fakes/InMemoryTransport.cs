using System.Net;
using System.Threading.Channels;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.ConnectionPort;

namespace IserBlockd.Iscsi.Tests.Fakes;

/// <summary>A PDU as it crosses the in-memory transport: header (BHS + AHS) and data segment, both copied.</summary>
public sealed record RawPdu(byte[] Header, byte[] Data)
{
    public IscsiOpcode Opcode => BasicHeaderSegment.GetOpcode(Header);
    public uint Itt => BasicHeaderSegment.GetInitiatorTaskTag(Header);

    public static RawPdu Of(Action<Span<byte>> writeHeader, byte[]? data = null)
    {
        var header = new byte[BasicHeaderSegment.Length];
        writeHeader(header);
        return new RawPdu(header, data ?? []);
    }
}

/// <summary>
/// The core's transport port implemented in memory: each connection is a pair of channels of whole PDUs to a
/// <see cref="FakeTarget"/>. Tests feed the core arbitrary PDUs (bad opcodes, unknown tags, oversized segments)
/// without any socket. Capabilities and transport login keys are settable, to exercise what iSER will need.
/// </summary>
public sealed class InMemoryTransport : IIscsiTransport
{
    private readonly Dictionary<string, FakeTarget> _portals = new();

    public string Name => "memory";

    public IscsiTransportCapabilities Capabilities { get; set; }

    public Func<ITransportLoginKeys?>? LoginKeys { get; set; }

    public List<InMemoryConnection> Connections { get; } = [];

    public void Listen(IscsiPortal portal, FakeTarget target) => _portals[portal.Address] = target;

    public ValueTask<IIscsiConnection> ConnectAsync(IscsiPortal portal, CancellationToken cancellationToken)
    {
        if (!_portals.TryGetValue(portal.Address, out var target))
            throw new IscsiTransportException($"cannot connect to {portal.Address}: connection refused");
        var connection = new InMemoryConnection(Capabilities, LoginKeys?.Invoke());
        lock (Connections) Connections.Add(connection);
        target.Accept(connection.TargetSide, portal);
        return ValueTask.FromResult<IIscsiConnection>(connection);
    }
}

/// <summary>The target's end of an in-memory connection.</summary>
public sealed class TargetSide(Channel<RawPdu> fromInitiator, Channel<RawPdu> toInitiator)
{
    public ChannelReader<RawPdu> Incoming => fromInitiator.Reader;

    public ValueTask SendAsync(RawPdu pdu) => toInitiator.Writer.WriteAsync(pdu);

    public bool TrySend(RawPdu pdu) => toInitiator.Writer.TryWrite(pdu);

    /// <summary>Closes the connection as a target would (the initiator sees "closed by the target").</summary>
    public void Close() => toInitiator.Writer.TryComplete();
}

public sealed class InMemoryConnection : IIscsiConnection
{
    private readonly Channel<RawPdu> _toTarget = Channel.CreateUnbounded<RawPdu>();
    private readonly Channel<RawPdu> _toInitiator = Channel.CreateUnbounded<RawPdu>();
    private RawPdu? _current;

    internal InMemoryConnection(IscsiTransportCapabilities capabilities, ITransportLoginKeys? loginKeys)
    {
        Capabilities = capabilities;
        LoginKeys = loginKeys;
        TargetSide = new TargetSide(_toTarget, _toInitiator);
    }

    public TargetSide TargetSide { get; }
    public IscsiTransportCapabilities Capabilities { get; }
    public ITransportLoginKeys? LoginKeys { get; }
    public EndPoint? LocalEndPoint => null;
    public EndPoint? RemoteEndPoint => null;
    public FullFeaturePhaseContext? FullFeature { get; private set; }
    public List<ScsiTaskData> TaskData { get; } = [];
    public List<uint> Released { get; } = [];
    public bool Disposed { get; private set; }

    /// <summary>Every count of owed answers (and their bytes) the receive loop gave before it waited, in order.</summary>
    public List<(int Answers, long Bytes)> AnswersExpected { get; } = [];

    public void ExpectAnswers(int answers, long bytes)
    {
        lock (AnswersExpected) AnswersExpected.Add((answers, bytes));
    }

    public ValueTask StartFullFeaturePhaseAsync(FullFeaturePhaseContext context, CancellationToken cancellationToken)
    {
        FullFeature = context;
        return ValueTask.CompletedTask;
    }

    /// <summary>While set and not completed, a SCSI Command's send waits for it (as an iSER send waits for credits).</summary>
    public TaskCompletionSource? HoldCommands { get; set; }

    public ValueTask SendAsync(OutboundPdu pdu, CancellationToken cancellationToken)
    {
        if (HoldCommands is { Task.IsCompleted: false } hold && BasicHeaderSegment.GetOpcode(pdu.Header.Span) == IscsiOpcode.ScsiCommand)
            return SendAfterHoldAsync(hold.Task, pdu, cancellationToken);
        return SendNow(pdu);
    }

    private async ValueTask SendAfterHoldAsync(Task hold, OutboundPdu pdu, CancellationToken cancellationToken)
    {
        await hold.WaitAsync(cancellationToken);
        await SendNow(pdu);
    }

    private ValueTask SendNow(OutboundPdu pdu)
    {
        if (!pdu.Task.IsEmpty) lock (TaskData) TaskData.Add(pdu.Task);
        if (!_toTarget.Writer.TryWrite(new RawPdu(pdu.Header.ToArray(), pdu.Data.ToArray())))
            throw new IscsiTransportException("connection closed");
        return ValueTask.CompletedTask;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public async ValueTask<InboundPdu> ReceiveHeaderAsync(CancellationToken cancellationToken)
    {
        try
        {
            _current = await _toInitiator.Reader.ReadAsync(cancellationToken);
        }
        catch (ChannelClosedException)
        {
            throw new IscsiTransportException("connection closed by the target");
        }
        if (_current.Header.Length < BasicHeaderSegment.Length)
            throw new IscsiProtocolException($"connection closed in the middle of a PDU: truncated PDU header ({_current.Header.Length} of {BasicHeaderSegment.Length} bytes)");
        return new InboundPdu(_current.Header);
    }

    /// <summary>
    /// While set, the next Data-In's segment lands in two steps, as over a socket: the first half, then (once this
    /// completes) the rest. <see cref="DataInPaused"/> completes when the first half is in; the connection failing
    /// meanwhile ends the receive with a transport error, as a closed socket does.
    /// </summary>
    public TaskCompletionSource? PauseDataIn { get; set; }
    public TaskCompletionSource DataInPaused { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The paused receive returned or threw: nothing is written into its destination any more.</summary>
    public bool PausedReceiveOver => Volatile.Read(ref _pausedReceiveOver);
    private bool _pausedReceiveOver;

    public ValueTask<ReadOnlyMemory<byte>> ReceiveDataAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        var data = _current!.Data;
        if (data.Length != BasicHeaderSegment.GetDataSegmentLength(_current.Header))
            throw new IscsiProtocolException($"connection closed in the middle of a PDU: truncated data segment ({data.Length} of {BasicHeaderSegment.GetDataSegmentLength(_current.Header)} bytes)");
        if (destination.IsEmpty) return ValueTask.FromResult<ReadOnlyMemory<byte>>(data);
        if (PauseDataIn is { } resume && _current.Opcode == IscsiOpcode.DataIn)
        {
            PauseDataIn = null;
            return ReceiveInTwoStepsAsync(data, destination, resume.Task, cancellationToken);
        }
        data.CopyTo(destination);
        return ValueTask.FromResult<ReadOnlyMemory<byte>>(destination);
    }

    private async ValueTask<ReadOnlyMemory<byte>> ReceiveInTwoStepsAsync(byte[] data, Memory<byte> destination, Task resume, CancellationToken cancellationToken)
    {
        try
        {
            var half = data.Length / 2;
            data.AsSpan(0, half).CopyTo(destination.Span);
            DataInPaused.TrySetResult();
            try
            {
                await resume.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                throw new IscsiTransportException("connection closed in the middle of a data segment");
            }
            data.AsSpan(half).CopyTo(destination.Span[half..]);
            return destination;
        }
        finally
        {
            Volatile.Write(ref _pausedReceiveOver, true);
        }
    }

    public void ReleaseTask(uint initiatorTaskTag)
    {
        lock (Released) Released.Add(initiatorTaskTag);
    }

    public ValueTask DisposeAsync()
    {
        Disposed = true;
        _toTarget.Writer.TryComplete();
        _toInitiator.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }
}
