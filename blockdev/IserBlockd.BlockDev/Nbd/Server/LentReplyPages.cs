using IserBlockd.BlockDev.Buffers;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>A READ payload that left by page reference: its buffer, what it is charged, and where it ends in the
/// stream of bytes the writer has sent.</summary>
internal readonly record struct LentPayload(PooledBlockBuffer Buffer, long PayloadBytes, long ExportCharge, long ClientCharge, long End);

/// <summary>
/// READ payloads sent by page reference (<see cref="Streams.INbdTransport.SendPagesNow"/>) that the client may not
/// have read yet: until it has, the socket's queue holds their pages, and their buffers must not be reused. A Unix
/// socket's queue is read in order, and its unread count (SIOCOUTQ) is at least the bytes still queued; so once that
/// count is no more than what the writer sent after a payload's end, the payload (and all before it) has been read.
/// Looked at before each send, when the reader waits for room, and by a timer while the writer is idle.
/// </summary>
internal sealed class LentReplyPages
{
    private const int FirstRetryMs = 1;
    private const int LastRetryMs = 100;

    private readonly NbdConnection _connection;
    private readonly object _lock = new();
    private LentPayload[] _ring;
    private int _head;
    private int _count;
    /// <summary>Every byte the writer has sent (written by the writer only, after the send).</summary>
    private long _sent;
    private Timer? _retry;
    private int _retryArmed;
    private int _retryMs = FirstRetryMs;

    public LentReplyPages(NbdConnection connection, int capacity)
    {
        _connection = connection;
        _ring = new LentPayload[Math.Max(capacity, 16)];
    }

    public bool Any => Volatile.Read(ref _count) != 0;

    /// <summary>The writer sent <paramref name="bytes"/> more (by any means).</summary>
    public void Sent(long bytes) => Volatile.Write(ref _sent, _sent + bytes);

    /// <summary>The writer sent <paramref name="request"/>'s payload (ending at what it has sent so far) by page
    /// reference: the request is released, its buffer and charges kept here.</summary>
    public void Lend(NbdInFlightRequest request)
    {
        var loan = _connection.ReleaseLending(request, Volatile.Read(ref _sent));
        lock (_lock)
        {
            if (_count == _ring.Length)
            {
                var grown = new LentPayload[_ring.Length * 2];
                for (var i = 0; i < _count; i++) grown[i] = _ring[(_head + i) % _ring.Length];
                _ring = grown;
                _head = 0;
            }
            _ring[(_head + _count) % _ring.Length] = loan;
            Volatile.Write(ref _count, _count + 1);
        }
    }

    /// <summary>Returns every payload the client has read. True when any was returned.</summary>
    public bool Reclaim()
    {
        if (!Any) return false;
        // What was sent is read before the unread count: bytes sent in between then only make the test stricter.
        var sent = Volatile.Read(ref _sent);
        var unread = _connection.Transport.UnreadBytes;
        if (unread < 0) return false;
        var returned = false;
        while (true)
        {
            LentPayload loan;
            lock (_lock)
            {
                if (_count == 0 || unread > sent - _ring[_head].End) break;
                loan = _ring[_head];
                _ring[_head] = default;
                _head = (_head + 1) % _ring.Length;
                Volatile.Write(ref _count, _count - 1);
            }
            _connection.ReturnLoan(loan);
            returned = true;
        }
        return returned;
    }

    /// <summary>Payloads are lent and nothing else will look for a while (the connection is idle, or the reader waits
    /// for their room): look again soon, then less and less often, until they are back.</summary>
    public void ReclaimLater()
    {
        if (Interlocked.CompareExchange(ref _retryArmed, 1, 0) != 0) return;
        var retry = Volatile.Read(ref _retry);
        if (retry == null)
        {
            // The writer and the reader may both get here first.
            var created = new Timer(static state => ((LentReplyPages)state!).OnRetry(), this, Timeout.Infinite, Timeout.Infinite);
            retry = Interlocked.CompareExchange(ref _retry, created, null) ?? created;
            if (retry != created) created.Dispose();
        }
        try { retry.Change(Volatile.Read(ref _retryMs), Timeout.Infinite); }
        catch (ObjectDisposedException) { }
    }

    private void OnRetry()
    {
        Reclaim();
        Volatile.Write(ref _retryArmed, 0);
        if (!Any)
        {
            Volatile.Write(ref _retryMs, FirstRetryMs);
            return;
        }
        Volatile.Write(ref _retryMs, Math.Min(_retryMs * 2, LastRetryMs));
        ReclaimLater();
    }

    /// <summary>The connection is over but the client has not read everything: what the payloads are charged (the
    /// pool's reservations, the budgets) is released now, as for a reply copied into the socket, whose copy the
    /// kernel holds; the buffers stay out of use until the client reads or closes.</summary>
    public void AbandonAll()
    {
        lock (_lock)
        {
            for (var i = 0; i < _count; i++)
            {
                ref var loan = ref _ring[(_head + i) % _ring.Length];
                if (loan.PayloadBytes == 0 && loan.ExportCharge == 0 && loan.ClientCharge == 0) continue;
                loan.Buffer.Abandon();
                _connection.ReturnCharges(loan);
                loan = loan with { PayloadBytes = 0, ExportCharge = 0, ClientCharge = 0 };
            }
        }
    }

    /// <summary>After the connection ends: waits until the client has read (or dropped, by closing) every lent
    /// payload, then runs <paramref name="then"/> (closing the socket, which the unread count needs until then).</summary>
    public async Task DrainThenAsync(Func<ValueTask> then)
    {
        var delay = FirstRetryMs;
        while (true)
        {
            Reclaim();
            if (!Any || _connection.Transport.UnreadBytes < 0) break;
            await Task.Delay(delay).ConfigureAwait(false);
            delay = Math.Min(delay * 2, LastRetryMs * 10);
        }
        if (_retry != null) await _retry.DisposeAsync().ConfigureAwait(false);
        await then().ConfigureAwait(false);
    }
}
