using System.Buffers.Binary;
using System.Net.Sockets;

namespace IserBlockd.Integration.Tests;

/// <summary>
/// An NBD client on a bare TCP socket, for what real clients never do: connect and stay silent, or enter
/// transmission, pipeline requests and never read a reply.
/// </summary>
internal sealed class RawNbdPeer : IDisposable
{
    private const ulong OptionMagic = 0x49484156454F5054; // IHAVEOPT
    private const uint RequestMagic = 0x25609513;
    private const uint OptExportName = 1;
    private const uint FlagFixedNewstyle = 1, FlagNoZeroes = 2;

    private RawNbdPeer(Socket socket) => Socket = socket;

    public Socket Socket { get; }

    /// <summary>Connects and reads the server's greeting, and does nothing else.</summary>
    public static async Task<RawNbdPeer> ConnectSilentAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var peer = new RawNbdPeer(socket);
        try
        {
            await socket.ConnectAsync("127.0.0.1", port).WaitAsync(TimeSpan.FromSeconds(30));
            await peer.ReceiveExactlyAsync(18); // NBDMAGIC, IHAVEOPT, handshake flags
            return peer;
        }
        catch
        {
            peer.Dispose();
            throw;
        }
    }

    /// <summary>Connects and enters transmission on <paramref name="export"/> with NBD_OPT_EXPORT_NAME (which a
    /// server refuses by hanging up). Returns the export's size.</summary>
    public static async Task<(RawNbdPeer Peer, ulong Size)> ConnectAsync(int port, string export)
    {
        var peer = await ConnectSilentAsync(port);
        try
        {
            var flags = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(flags, FlagFixedNewstyle | FlagNoZeroes);
            await peer.Socket.SendAsync(flags);
            var name = System.Text.Encoding.UTF8.GetBytes(export);
            var option = new byte[16 + name.Length];
            BinaryPrimitives.WriteUInt64BigEndian(option, OptionMagic);
            BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(8), OptExportName);
            BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(12), (uint)name.Length);
            name.CopyTo(option, 16);
            await peer.Socket.SendAsync(option);
            var reply = await peer.ReceiveExactlyAsync(10); // size, transmission flags (no zeroes)
            return (peer, BinaryPrimitives.ReadUInt64BigEndian(reply));
        }
        catch
        {
            peer.Dispose();
            throw;
        }
    }

    /// <summary>Sends <paramref name="count"/> READs of <paramref name="length"/> bytes back to back, cycling
    /// through the first <paramref name="size"/> bytes of the export.</summary>
    public async Task PipelineReadsAsync(int count, uint length, ulong size)
    {
        var requests = new byte[28 * count];
        for (var i = 0; i < count; i++)
        {
            var r = requests.AsSpan(28 * i, 28);
            BinaryPrimitives.WriteUInt32BigEndian(r, RequestMagic);
            BinaryPrimitives.WriteUInt16BigEndian(r[4..], 0);  // flags
            BinaryPrimitives.WriteUInt16BigEndian(r[6..], 0);  // NBD_CMD_READ
            BinaryPrimitives.WriteUInt64BigEndian(r[8..], (ulong)i + 1);
            BinaryPrimitives.WriteUInt64BigEndian(r[16..], (ulong)i * length % (size - length + 1) / 4096 * 4096);
            BinaryPrimitives.WriteUInt32BigEndian(r[24..], length);
        }
        await Socket.SendAsync(requests).WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Reads (and drops) whatever arrives until the server closes; false if it is still open at the deadline.</summary>
    public async Task<bool> DrainUntilClosedAsync(TimeSpan timeout)
    {
        var scratch = new byte[1 << 20];
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            while (await Socket.ReceiveAsync(scratch, deadline.Token) > 0) { }
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (SocketException)
        {
            return true; // reset
        }
    }

    private async Task<byte[]> ReceiveExactlyAsync(int count)
    {
        var buffer = new byte[count];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        for (var got = 0; got < count;)
        {
            var n = await Socket.ReceiveAsync(buffer.AsMemory(got), deadline.Token);
            if (n == 0) throw new IOException("the server closed the connection");
            got += n;
        }
        return buffer;
    }

    public void Dispose() => Socket.Dispose();
}
