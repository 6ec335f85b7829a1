using System.Net;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Interop;
using IserBlockd.Transport.Iser;

namespace IserBlockd.Transport.Tests.Iser;

/// <summary>
/// The RDMA side of an <see cref="IserConnection"/> without hardware, played by the test as the target would: it
/// keeps the posted receive buffers (real native memory) and fills them with <see cref="Deliver"/>; it copies every
/// posted send out of its descriptor; it reads and writes advertised STag/VA ranges as RDMA Read/Write would (checking
/// them against the registrations, as an RNIC does); and it completes work requests through the connection's
/// work request table, like the completion dispatcher.
/// </summary>
internal sealed unsafe class FakeWire(FakeRegistrar registrar) : IIserWire
{
    private readonly object _gate = new();
    private readonly Queue<(ulong WrId, ulong Address, uint Length)> _receives = new();
    private readonly Queue<ulong> _unfinishedSends = new();
    private readonly Queue<ulong> _unfinishedInvalidates = new();

    /// <summary>The connection's memory windows (binds and invalidates act on them).</summary>
    public FakeWindows? Windows { get; set; }

    /// <summary>Work requests posted, in order, by opcode (binds, invalidates and sends).</summary>
    public List<IbvWrOpcode> Posted { get; } = [];

    /// <summary>Complete each local invalidate as soon as it is posted (else <see cref="CompleteInvalidates"/> does).</summary>
    public bool CompleteInvalidatesAtOnce { get; set; } = true;

    public IserConnection? Connection { get; set; }

    /// <summary>Every message posted for sending, in order: iSER header, BHS, AHS, data.</summary>
    public List<byte[]> Sent { get; } = [];

    /// <summary>Complete each send as soon as it is posted (else <see cref="CompleteSends"/> does).</summary>
    public bool CompleteSendsAtOnce { get; set; } = true;

    /// <summary>Doorbells rung: calls of PostSend (one per chain).</summary>
    public int SendPosts { get; private set; }

    public int PostErrno { get; set; }

    public bool Disconnected { get; private set; }

    public bool Destroyed { get; private set; }

    public int PostedReceives
    {
        get { lock (_gate) return _receives.Count; }
    }

    public EndPoint? LocalEndPoint => new IPEndPoint(IPAddress.Parse("10.99.0.2"), 40000);

    public EndPoint? RemoteEndPoint => new IPEndPoint(IPAddress.Parse("10.99.0.1"), 3260);

    /// <summary>Copy each send into <see cref="Sent"/> (off for allocation measurements).</summary>
    public bool RecordSends { get; set; } = true;

    public int PostSend(IbvSendWr* chain)
    {
        if (PostErrno != 0) return PostErrno;
        SendPosts++;
        for (var wr = chain; wr != null;)
        {
            if (RecordSends) lock (_gate) Posted.Add(wr->Opcode);
            if (wr->Opcode == IbvWrOpcode.BindMemoryWindow)
            {
                if ((wr->SendFlags & IbvSendFlags.Signaled) != 0) throw new InvalidOperationException("binds are expected unsignaled");
                Windows!.Bind(wr->BindRemoteKey, wr->BindInfo);
                wr = wr->Next;
                continue;
            }
            if (wr->Opcode == IbvWrOpcode.LocalInvalidate)
            {
                Windows!.Invalidate(wr->InvalidateRemoteKey);
                var invalidateId = wr->WorkRequestId;
                wr = wr->Next;
                if (CompleteInvalidatesAtOnce) Complete(invalidateId, IbvWcStatus.Success, IbvWcOpcode.LocalInvalidate, 0);
                else lock (_gate) _unfinishedInvalidates.Enqueue(invalidateId);
                continue;
            }
            if (wr->Opcode != IbvWrOpcode.Send || wr->ScatterGatherCount != 1)
                throw new InvalidOperationException($"unexpected work request {wr->Opcode} with {wr->ScatterGatherCount} SGEs");
            var sge = wr->ScatterGatherList[0];
            var id = wr->WorkRequestId;
            var next = wr->Next; // the descriptor may be reused as soon as its completion runs
            if (RecordSends)
                lock (_gate) Sent.Add(new ReadOnlySpan<byte>((void*)sge.Address, (int)sge.Length).ToArray());
            if (CompleteSendsAtOnce) Complete(id, IbvWcStatus.Success, IbvWcOpcode.Send, 0);
            else lock (_gate) _unfinishedSends.Enqueue(id);
            wr = next;
        }
        return 0;
    }

    public int PostReceive(IbvRecvWr* chain)
    {
        if (PostErrno != 0) return PostErrno;
        lock (_gate)
        {
            for (var wr = chain; wr != null; wr = wr->Next)
            {
                var sge = wr->ScatterGatherList[0];
                if (!KnownLocalKey(sge.LocalKey))
                    throw new InvalidOperationException($"receive SGE with unknown lkey 0x{sge.LocalKey:x}");
                _receives.Enqueue((wr->WorkRequestId, sge.Address, sge.Length));
            }
        }
        return 0;
    }

    private bool KnownLocalKey(uint localKey)
    {
        foreach (var r in registrar.Registrations)
            if (r.LocalKey == localKey && !r.Disposed) return true;
        return false;
    }

    /// <summary>Completes the sends posted so far (when <see cref="CompleteSendsAtOnce"/> is off).</summary>
    public void CompleteSends(int count = int.MaxValue)
    {
        var ids = new List<ulong>();
        lock (_gate)
            while (ids.Count < count && _unfinishedSends.TryDequeue(out var id)) ids.Add(id);
        foreach (var id in ids) Complete(id, IbvWcStatus.Success, IbvWcOpcode.Send, 0);
    }

    /// <summary>Completes the local invalidates posted so far (when <see cref="CompleteInvalidatesAtOnce"/> is off).</summary>
    public void CompleteInvalidates()
    {
        var ids = new List<ulong>();
        lock (_gate)
            while (_unfinishedInvalidates.TryDequeue(out var id)) ids.Add(id);
        foreach (var id in ids) Complete(id, IbvWcStatus.Success, IbvWcOpcode.LocalInvalidate, 0);
    }

    /// <summary>The target sends <paramref name="message"/>: it lands in the oldest posted receive buffer.</summary>
    public void Deliver(ReadOnlySpan<byte> message) => Deliver(message, null);

    /// <summary>The target sends <paramref name="message"/> with Send with Invalidate of <paramref name="invalidate"/> (when set).</summary>
    public void Deliver(ReadOnlySpan<byte> message, uint? invalidate)
    {
        (ulong WrId, ulong Address, uint Length) receive;
        lock (_gate)
        {
            if (!_receives.TryDequeue(out receive))
                throw new InvalidOperationException("receiver not ready: no receive buffer is posted (an RNIC would retry, then fail the QP)");
        }
        if (message.Length > receive.Length)
            throw new InvalidOperationException($"a {message.Length}-byte message does not fit the {receive.Length}-byte receive buffer");
        message.CopyTo(new Span<byte>((void*)receive.Address, message.Length));
        if (invalidate is { } key) Windows!.Invalidate(key);
        Complete(receive.WrId, IbvWcStatus.Success, IbvWcOpcode.Receive, (uint)message.Length, invalidate);
    }

    /// <summary>Builds an iSER control PDU (iSER header, BHS, data) and delivers it.</summary>
    public void DeliverPdu(ReadOnlySpan<byte> bhs, ReadOnlySpan<byte> data = default, byte iserFlags = 0x10, uint? invalidate = null)
    {
        var message = new byte[IserHeader.Length + bhs.Length + data.Length];
        message[0] = iserFlags;
        bhs.CopyTo(message.AsSpan(IserHeader.Length));
        data.CopyTo(message.AsSpan(IserHeader.Length + bhs.Length));
        Deliver(message, invalidate);
    }

    /// <summary>RDMA Write by the target into the initiator's advertised buffer (READ data).</summary>
    public void RdmaWrite(uint remoteKey, ulong address, ReadOnlySpan<byte> data)
    {
        if (registrar.FindRemote(remoteKey, address, data.Length) == null && Windows?.Allows(remoteKey, address, data.Length, IbvAccessFlags.RemoteWrite) != true)
            throw new InvalidOperationException($"remote access error: STag 0x{remoteKey:x} does not cover 0x{address:x}+{data.Length}");
        data.CopyTo(new Span<byte>((void*)address, data.Length));
    }

    /// <summary>RDMA Read by the target from the initiator's advertised buffer (WRITE data).</summary>
    public byte[] RdmaRead(uint remoteKey, ulong address, int length)
    {
        if (registrar.FindRemote(remoteKey, address, length) == null && Windows?.Allows(remoteKey, address, length, IbvAccessFlags.RemoteRead) != true)
            throw new InvalidOperationException($"remote access error: STag 0x{remoteKey:x} does not cover 0x{address:x}+{length}");
        return new ReadOnlySpan<byte>((void*)address, length).ToArray();
    }

    /// <summary>The QP went to the error state: every posted work request completes flushed.</summary>
    public void FlushAll()
    {
        List<ulong> receives, sends;
        lock (_gate)
        {
            receives = _receives.Select(r => r.WrId).ToList();
            _receives.Clear();
            sends = [.. _unfinishedSends, .. _unfinishedInvalidates];
            _unfinishedSends.Clear();
            _unfinishedInvalidates.Clear();
        }
        foreach (var id in receives) Complete(id, IbvWcStatus.WorkRequestFlushError, IbvWcOpcode.Receive, 0);
        foreach (var id in sends) Complete(id, IbvWcStatus.WorkRequestFlushError, IbvWcOpcode.Send, 0);
    }

    public void Disconnect()
    {
        Disconnected = true;
        FlushAll();
    }

    public ValueTask DestroyAsync()
    {
        Destroyed = true;
        return ValueTask.CompletedTask;
    }

    private void Complete(ulong wrId, IbvWcStatus status, IbvWcOpcode opcode, uint length, uint? invalidated = null)
    {
        if (!Connection!.WorkRequests.TryGetHandler(wrId, out var handler))
            throw new InvalidOperationException($"no handler for wr_id 0x{wrId:x}");
        handler.OnWorkCompletion(new IbvWc
        {
            WorkRequestId = wrId, Status = status, Opcode = opcode, ByteLength = length,
            Flags = invalidated != null ? IbvWcFlags.WithInvalidate : IbvWcFlags.None, ImmediateData = invalidated ?? 0,
        });
    }
}
