using System.Buffers.Binary;
using System.Net.Sockets;
using IserBlockd.BlockDev.Nbd.Protocol;

namespace IserBlockd.BlockDev.Tests.Support;

/// <summary>One reply as the client saw it: a simple reply, or the chunks of a structured one put together.</summary>
internal sealed record NbdReply(ulong Handle, uint Error, byte[] Data, string? ErrorMessage, bool Structured)
{
    /// <summary>BLOCK_STATUS: the meta context id and descriptors of its chunk.</summary>
    public (uint ContextId, BlockExtent[] Extents)? BlockStatus { get; init; }

    public BlockError BlockError => (BlockError)Error;
}

/// <summary>An option reply: header and data.</summary>
internal sealed record NbdOptionReply(NbdOptionReplyHeader Header, byte[] Data);

/// <summary>
/// A deliberately low-level NBD client for tests: it speaks the protocol byte by byte with our own
/// codec, and can also send what a well-behaved client never would (bad magic, half payloads).
/// Blocking calls with a receive timeout, so a server that never answers fails the test instead of hanging it.
/// </summary>
internal sealed class RawNbdClient : IDisposable
{
    private readonly Dictionary<ulong, (NbdCommand Command, uint Length)> _pending = [];
    private ulong _nextHandle = 1;

    private RawNbdClient(Socket socket)
    {
        Socket = socket;
        Socket.ReceiveTimeout = 15_000;
        Socket.SendTimeout = 15_000;
    }

    public Socket Socket { get; }
    public NbdHandshakeFlags ServerFlags { get; private set; }
    public ulong Size { get; private set; }
    public NbdTransmissionFlags Flags { get; private set; }
    public NbdInfoBlockSize? BlockSizes { get; private set; }
    public bool StructuredReplies { get; set; }

    /// <summary>Connects and reads the server greeting, then sends the client flags.</summary>
    public static RawNbdClient Connect(string unixPath, NbdClientFlags clientFlags = NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(unixPath));
        var client = new RawNbdClient(socket);
        var greeting = client.ReceiveExactly(NbdServerGreeting.Size);
        client.ServerFlags = NbdServerGreeting.Read(greeting).Flags;
        var flags = new byte[4];
        new NbdClientGreeting(clientFlags).Write(flags);
        client.Socket.Send(flags);
        return client;
    }

    /// <summary>A client in transmission phase on an already connected socket (transmission-only servers).</summary>
    public static RawNbdClient ForTransmission(Socket socket, ulong size) => new(socket) { Size = size };

    /// <summary>Connects, optionally negotiates structured replies, and enters transmission with NBD_OPT_GO.</summary>
    public static RawNbdClient Open(string unixPath, string export = "", bool structuredReplies = false, bool allocationContext = false)
    {
        var client = Connect(unixPath);
        try
        {
            if (structuredReplies || allocationContext)
            {
                var reply = client.Option(NbdOption.StructuredReply, []);
                if (reply[^1].Header.Type != NbdOptionReplyType.Ack)
                    throw new InvalidOperationException($"structured replies refused: {reply[^1].Header.Type}");
                client.StructuredReplies = true;
            }
            if (allocationContext)
            {
                var set = client.Option(NbdOption.SetMetaContext, MetaContextRequest(export, "base:allocation"));
                if (set.Count != 2 || set[0].Header.Type != NbdOptionReplyType.MetaContext)
                    throw new InvalidOperationException($"base:allocation refused: {set[^1].Header.Type}");
            }
            var go = client.Option(NbdOption.Go, InfoRequest(export, NbdInfoType.BlockSize));
            if (go[^1].Header.Type != NbdOptionReplyType.Ack)
                throw new InvalidOperationException($"NBD_OPT_GO failed: {go[^1].Header.Type}");
            client.ApplyInfo(go);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    public static byte[] MetaContextRequest(string export, params string[] queries)
    {
        var request = new NbdMetaContextRequest(export, queries);
        var data = new byte[request.GetSize()];
        request.Write(data);
        return data;
    }

    public static byte[] InfoRequest(string export, params NbdInfoType[] requests)
    {
        var request = new NbdExportInfoRequest(export, requests);
        var data = new byte[request.GetSize()];
        request.Write(data);
        return data;
    }

    public void ApplyInfo(IEnumerable<NbdOptionReply> replies)
    {
        foreach (var reply in replies.Where(r => r.Header.Type == NbdOptionReplyType.Info))
        {
            switch ((NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(reply.Data))
            {
                case NbdInfoType.Export:
                    var info = NbdInfoExport.Read(reply.Data);
                    Size = info.Size;
                    Flags = info.Flags;
                    break;
                case NbdInfoType.BlockSize:
                    BlockSizes = NbdInfoBlockSize.Read(reply.Data);
                    break;
            }
        }
    }

    /// <summary>Sends an option and reads replies up to the final one (ACK or an error).</summary>
    public List<NbdOptionReply> Option(NbdOption option, ReadOnlySpan<byte> data)
    {
        SendOption(option, data);
        var replies = new List<NbdOptionReply>();
        while (true)
        {
            var reply = ReadOptionReply();
            replies.Add(reply);
            if (reply.Header.Type == NbdOptionReplyType.Ack || reply.Header.IsError) return replies;
        }
    }

    public void SendOption(NbdOption option, ReadOnlySpan<byte> data)
    {
        var message = new byte[NbdOptionHeader.Size + data.Length];
        new NbdOptionHeader(option, (uint)data.Length).Write(message);
        data.CopyTo(message.AsSpan(NbdOptionHeader.Size));
        Socket.Send(message);
    }

    public NbdOptionReply ReadOptionReply()
    {
        var header = NbdOptionReplyHeader.Read(ReceiveExactly(NbdOptionReplyHeader.Size));
        return new NbdOptionReply(header, ReceiveExactly((int)header.Length));
    }

    public ulong Send(NbdCommand command, ulong offset, uint length, NbdCommandFlags flags = 0, ReadOnlySpan<byte> payload = default)
    {
        var handle = _nextHandle++;
        Send(new NbdRequest(flags, command, handle, offset, length), payload);
        return handle;
    }

    public void Send(NbdRequest request, ReadOnlySpan<byte> payload = default)
    {
        _pending[request.Handle] = (request.Command, request.Length);
        var message = new byte[NbdRequest.Size + payload.Length];
        request.Write(message);
        payload.CopyTo(message.AsSpan(NbdRequest.Size));
        Socket.Send(message);
    }

    /// <summary>READs of <paramref name="length"/> bytes at each of <paramref name="offsets"/> in one send, so that the
    /// server finds them all in one receive; returns their handles.</summary>
    public ulong[] ReadMany(IReadOnlyList<ulong> offsets, uint length)
    {
        var message = new byte[NbdRequest.Size * offsets.Count];
        var handles = new ulong[offsets.Count];
        for (var i = 0; i < offsets.Count; i++)
        {
            var request = new NbdRequest(0, NbdCommand.Read, handles[i] = _nextHandle++, offsets[i], length);
            _pending[request.Handle] = (request.Command, request.Length);
            request.Write(message.AsSpan(i * NbdRequest.Size));
        }
        Socket.Send(message);
        return handles;
    }

    public void SendRaw(ReadOnlySpan<byte> bytes) => Socket.Send(bytes);

    /// <summary>Reads one complete reply (all chunks of a structured one).</summary>
    public NbdReply ReadReply()
    {
        var magic = BinaryPrimitives.ReadUInt32BigEndian(PeekMagic());
        if (magic == NbdMagic.SimpleReply)
        {
            var reply = NbdSimpleReply.Read(ReceiveExactly(NbdSimpleReply.Size));
            var (command, length) = _pending[reply.Handle];
            _pending.Remove(reply.Handle);
            var data = command == NbdCommand.Read && reply.Error == 0 ? ReceiveExactly((int)length) : [];
            return new NbdReply(reply.Handle, reply.Error, data, null, Structured: false);
        }
        return ReadStructuredReply();
    }

    private NbdReply ReadStructuredReply()
    {
        byte[]? data = null;
        uint error = 0;
        string? message = null;
        (uint, BlockExtent[])? blockStatus = null;
        while (true)
        {
            var header = NbdStructuredReplyHeader.Read(ReceiveExactly(NbdStructuredReplyHeader.Size));
            var payload = ReceiveExactly((int)header.Length);
            var (_, length) = _pending[header.Handle];
            switch (header.Type)
            {
                case NbdReplyChunkType.OffsetData:
                    data ??= new byte[length];
                    var offset = BinaryPrimitives.ReadUInt64BigEndian(payload);
                    var requestOffset = OffsetOf(header.Handle);
                    payload.AsSpan(8).CopyTo(data.AsSpan((int)(offset - requestOffset)));
                    break;
                case NbdReplyChunkType.Error:
                    (error, message) = NbdErrorChunk.ReadPayload(payload);
                    break;
                case NbdReplyChunkType.None:
                    break;
                case NbdReplyChunkType.BlockStatus:
                    blockStatus = NbdBlockStatusChunk.ReadPayload(payload);
                    break;
                default:
                    throw new InvalidOperationException($"unexpected chunk type {header.Type}");
            }
            if ((header.Flags & NbdReplyFlags.Done) != 0)
            {
                _pending.Remove(header.Handle);
                return new NbdReply(header.Handle, error, data ?? [], message, Structured: true) { BlockStatus = blockStatus };
            }
        }
    }

    private readonly Dictionary<ulong, ulong> _offsets = [];

    private ulong OffsetOf(ulong handle) => _offsets.GetValueOrDefault(handle);

    /// <summary>Like <see cref="Send(NbdCommand, ulong, uint, NbdCommandFlags, ReadOnlySpan{byte})"/> but
    /// remembers the offset, so structured data chunks can be placed.</summary>
    public ulong Read(ulong offset, uint length, NbdCommandFlags flags = 0)
    {
        var handle = Send(NbdCommand.Read, offset, length, flags);
        _offsets[handle] = offset;
        return handle;
    }

    public ulong Write(ulong offset, ReadOnlySpan<byte> data, NbdCommandFlags flags = 0) =>
        Send(NbdCommand.Write, offset, (uint)data.Length, flags, data);

    /// <summary>Sends one request and reads replies until its own arrives (other replies are returned too).</summary>
    public NbdReply Request(Func<RawNbdClient, ulong> send)
    {
        var handle = send(this);
        while (true)
        {
            var reply = ReadReply();
            if (reply.Handle == handle) return reply;
        }
    }

    public NbdReply ReadSync(ulong offset, uint length) => Request(c => c.Read(offset, length));

    public NbdReply WriteSync(ulong offset, byte[] data, NbdCommandFlags flags = 0) => Request(c => c.Write(offset, data, flags));

    /// <summary>True once the server has closed the connection (a read returns end of stream or a reset).</summary>
    public bool WaitForServerClose(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var scratch = new byte[4096];
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (!Socket.Poll(100_000, SelectMode.SelectRead)) continue;
                if (Socket.Receive(scratch) == 0) return true;
            }
            catch (SocketException)
            {
                return true;
            }
        }
        return false;
    }

    public void Disconnect()
    {
        Send(NbdCommand.Disconnect, 0, 0);
        Socket.Shutdown(SocketShutdown.Send);
    }

    private byte[] PeekMagic()
    {
        var magic = new byte[4];
        var got = 0;
        while (got < 4)
        {
            var n = Socket.Receive(magic, got, 4 - got, SocketFlags.Peek);
            if (n == 0) throw new EndOfStreamException("server closed the connection");
            if (n == 4) return magic;
            got = 0; // peek returns from the start; retry until all four are there
            Thread.Sleep(1);
        }
        return magic;
    }

    public byte[] ReceiveExactly(int count)
    {
        var buffer = new byte[count];
        var filled = 0;
        while (filled < count)
        {
            var n = Socket.Receive(buffer, filled, count - filled, SocketFlags.None);
            if (n == 0) throw new EndOfStreamException($"server closed the connection after {filled} of {count} bytes");
            filled += n;
        }
        return buffer;
    }

    public void Dispose() => Socket.Dispose();
}
