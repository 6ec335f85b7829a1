using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace IserBlockd.TestSupport;

/// <summary>
/// A TCP proxy on a free loopback port in front of a real server (e.g. tgtd), for fault tests: it can flip a byte
/// of what the server sends, stall a direction, cut every connection, and (reading the client's stream as iSCSI
/// PDUs: 48-byte BHS, AHS, data segment padded to 4, digests when told) swallow the Nth SCSI Command, or hold one
/// and deliver it late. One upstream connection per client.
/// </summary>
public sealed class TcpFaultProxy : IAsyncDisposable
{
    private const int BhsLength = 48;
    private const byte ScsiCommandOpcode = 0x01;

    private readonly Socket _listener;
    private readonly IPEndPoint _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Pair> _pairs = [];
    private readonly Task _accepting;
    private readonly object _faultGate = new();
    private long _corruptAt = -1;
    private long _serverBytes;
    private volatile bool _stalled;
    private CommandFault? _fault;
    private (Pair Pair, byte[] Pdu)? _held;

    public TcpFaultProxy(IPEndPoint upstream)
    {
        _upstream = upstream;
        _listener = new Socket(upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(upstream.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, 0));
        _listener.Listen(16);
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    /// <summary>The client's PDUs carry a CRC32C header digest (after login); set before any connection.</summary>
    public bool HeaderDigest { get; set; }

    /// <summary>The client's PDUs carry a CRC32C data digest (after login); set before any connection.</summary>
    public bool DataDigest { get; set; }

    /// <summary>Bytes the server has sent through the proxy so far (all connections).</summary>
    public long ServerBytes => Interlocked.Read(ref _serverBytes);

    /// <summary>SCSI Command PDUs the client sent through the proxy (all connections).</summary>
    public int ScsiCommands { get; private set; }

    /// <summary>Flips one bit of the server's byte <paramref name="afterBytes"/> bytes from now.</summary>
    public void CorruptServerByte(long afterBytes) => Interlocked.Exchange(ref _corruptAt, ServerBytes + afterBytes);

    /// <summary>While stalled, nothing is forwarded in either direction (the peers see a silent network).</summary>
    public bool Stalled
    {
        get => _stalled;
        set => _stalled = value;
    }

    /// <summary>
    /// Drops the <paramref name="nth"/> (1-based) SCSI Command from now on whose CDB opcode is one of
    /// <paramref name="opcodes"/> (any when empty): the target never sees it. Completes when it was swallowed.
    /// </summary>
    public Task SwallowScsiCommand(int nth, params byte[] opcodes) => Arm(nth, opcodes, hold: false);

    /// <summary>Like <see cref="SwallowScsiCommand"/>, but the command is kept for <see cref="DeliverHeldAsync"/>.</summary>
    public Task HoldScsiCommand(int nth, params byte[] opcodes) => Arm(nth, opcodes, hold: true);

    /// <summary>Sends the held command to the server on the connection it came from (if that is still open).</summary>
    public async Task<bool> DeliverHeldAsync()
    {
        (Pair Pair, byte[] Pdu)? held;
        lock (_faultGate)
        {
            held = _held;
            _held = null;
        }
        if (held is not { } h) return false;
        try
        {
            await h.Pair.SendToServerAsync(h.Pdu, _stop.Token);
            // Let the server read it before the connection ends (a close right after could discard it unread).
            await Task.Delay(200, _stop.Token);
            h.Pair.Server.Shutdown(SocketShutdown.Send);
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            return false;
        }
    }

    private Task Arm(int nth, byte[] opcodes, bool hold)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(nth, 1);
        var fault = new CommandFault(nth, opcodes, hold);
        lock (_faultGate) _fault = fault;
        return fault.Done.Task;
    }

    /// <summary>Resets every proxied connection (both sides see the connection drop).</summary>
    public void CutAll()
    {
        lock (_pairs)
        {
            foreach (var pair in _pairs) pair.Cut();
            _pairs.Clear();
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            var server = new Socket(_upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            client.NoDelay = true;
            try { await server.ConnectAsync(_upstream, _stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
                client.Dispose();
                server.Dispose();
                continue;
            }
            var pair = new Pair(client, server);
            lock (_pairs) _pairs.Add(pair);
            _ = PumpClientAsync(pair);
            _ = PumpServerAsync(pair);
        }
    }

    /// <summary>Client to server, PDU by PDU, so that one SCSI Command can be dropped or held.</summary>
    private async Task PumpClientAsync(Pair pair)
    {
        var header = new byte[BhsLength];
        var fullFeature = false;
        try
        {
            while (true)
            {
                if (!await ReadExactAsync(pair.Client, header)) break;
                var opcode = (byte)(header[0] & 0x3f);
                var ahs = header[4] * 4;
                var data = (int)(BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4)) & 0xffffff);
                var digests = fullFeature ? (HeaderDigest ? 4 : 0) + (DataDigest && data > 0 ? 4 : 0) : 0;
                var pdu = new byte[BhsLength + ahs + ((data + 3) & ~3) + digests];
                header.CopyTo(pdu, 0);
                if (!await ReadExactAsync(pair.Client, pdu.AsMemory(BhsLength))) break;
                // The login ends with a Login Request that has T=1 and NSG=3 (full feature phase).
                if (opcode == 0x03 && (header[1] & 0x80) != 0 && (header[1] & 0x03) == 3) fullFeature = true;
                while (_stalled) await Task.Delay(10, _stop.Token);
                if (opcode == ScsiCommandOpcode && Intercept(pair, pdu)) continue;
                await pair.SendToServerAsync(pdu, _stop.Token);
            }
            if (!HoldsFor(pair)) pair.Server.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // The connection of a held command stays open towards the server, so that the command can still arrive
            // there late, as from a network that delivers it after the client gave up on the connection.
            if (!HoldsFor(pair) || _stop.IsCancellationRequested)
                try { pair.Server.Dispose(); } catch (ObjectDisposedException) { }
        }
    }

    private bool HoldsFor(Pair pair)
    {
        lock (_faultGate) return _held is { } h && h.Pair == pair;
    }

    private bool Intercept(Pair pair, byte[] pdu)
    {
        lock (_faultGate)
        {
            ScsiCommands++;
            if (_fault is not { } fault) return false;
            if (fault.Opcodes.Length > 0 && Array.IndexOf(fault.Opcodes, pdu[32]) < 0) return false;
            if (++fault.Seen < fault.Nth) return false;
            _fault = null;
            if (fault.Hold) _held = (pair, pdu);
            fault.Done.TrySetResult();
            return true;
        }
    }

    private async Task PumpServerAsync(Pair pair)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await pair.Server.ReceiveAsync(buffer, _stop.Token);
                if (n == 0) break;
                while (_stalled) await Task.Delay(10, _stop.Token);
                var start = Interlocked.Add(ref _serverBytes, n) - n;
                var at = Interlocked.Read(ref _corruptAt);
                if (at >= start && at < start + n && Interlocked.CompareExchange(ref _corruptAt, -1, at) == at)
                    buffer[at - start] ^= 0x10;
                var sent = 0;
                while (sent < n) sent += await pair.Client.SendAsync(buffer.AsMemory(sent, n - sent), _stop.Token);
            }
            pair.Client.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            try { pair.Client.Dispose(); } catch (ObjectDisposedException) { }
        }
    }

    private static async Task<bool> ReadExactAsync(Socket socket, Memory<byte> buffer)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer[read..]);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        CutAll();
        try { await _accepting; } catch (OperationCanceledException) { }
        _stop.Dispose();
    }

    private sealed class CommandFault(int nth, byte[] opcodes, bool hold)
    {
        public int Nth { get; } = nth;
        public byte[] Opcodes { get; } = opcodes;
        public bool Hold { get; } = hold;
        public int Seen;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Pair(Socket client, Socket server)
    {
        private readonly SemaphoreSlim _serverSend = new(1, 1);

        public Socket Client { get; } = client;
        public Socket Server { get; } = server;

        public async Task SendToServerAsync(byte[] pdu, CancellationToken token)
        {
            await _serverSend.WaitAsync(token);
            try
            {
                var sent = 0;
                while (sent < pdu.Length) sent += await Server.SendAsync(pdu.AsMemory(sent), token);
            }
            finally
            {
                _serverSend.Release();
            }
        }

        public void Cut()
        {
            try
            {
                Client.LingerState = new LingerOption(true, 0); // a reset, not an orderly close
            }
            catch (ObjectDisposedException)
            {
                // The pump closed this pair already (its peer went first): there is nothing left to reset.
            }
            Client.Dispose();
            Server.Dispose();
        }
    }
}
