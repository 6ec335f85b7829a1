using IserBlockd.BlockDev.Buffers;
using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Streams;
using IserBlockd.BlockDev.Tests.Support;
using IserBlockd.Primitives.Native;
using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>
/// On a Unix socket, large READ payloads leave by page reference (vmsplice + splice): the client's socket queue then
/// holds the pages of the device's buffer, not a copy. The buffer must not be reused until the client has read the
/// reply, or the client would read another request's data; once it has (or has closed), the buffer goes back.
/// </summary>
public class PagedReplyTests(ITestOutputHelper output)
{
    private const int Region = 1 << 20;
    private const int Regions = 4;
    private const long Size = 16 << 20;

    private static (MemoryBlockDevice Device, PinnedBlockBufferPool Pool) PatternedDevice()
    {
        var pool = new PinnedBlockBufferPool();
        var device = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { Buffers = pool });
        for (var i = 0; i < Regions; i++)
        {
            var pattern = new byte[Region];
            pattern.AsSpan().Fill((byte)(i + 1));
            device.Write((long)i * Region, pattern);
        }
        return (device, pool);
    }

    /// <summary>Sends the READs one by one, each only once the previous reply is whole in the client's queue, so a
    /// buffer given back too early is the one the next READ reads into.</summary>
    private static void ReadRegionsWithoutTakingReplies(RawNbdClient client, bool structured)
    {
        var replyHeader = structured ? 28 : 16; // an OFFSET_DATA chunk's header and offset, or a simple reply
        for (var i = 0; i < Regions; i++)
        {
            client.Read((ulong)i * Region, Region);
            var queued = (i + 1) * (Region + replyHeader);
            var deadline = Environment.TickCount64 + 10_000;
            while (client.Socket.Available < queued)
            {
                Assert.True(Environment.TickCount64 < deadline, $"reply {i} not queued: {client.Socket.Available} of {queued} bytes");
                Thread.Sleep(1);
            }
        }
    }

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var deadline = Environment.TickCount64 + 10_000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, what);
            await Task.Delay(5);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_lent_buffer_is_not_reused_before_the_client_reads_its_reply(bool structured)
    {
        var (device, pool) = PatternedDevice();
        await using var server = new NbdServer(null, new TestLoggerFactory(output));
        var (clientEnd, serverEnd) = SocketPair.Create();
        // Room for every reply at once, so each leaves whole by page reference.
        var serving = server.ServeTransmissionAsync(new SocketTransport(serverEnd, 8 << 20, null), new NbdExport("", device), structured);
        using var client = RawNbdClient.ForTransmission(clientEnd, Size);
        client.StructuredReplies = structured;

        ReadRegionsWithoutTakingReplies(client, structured);
        // Every request is answered, yet every buffer is still out: the client's queue holds their pages.
        Assert.Equal((long)Regions * Region, pool.RentedBytes);

        for (var i = 0; i < Regions; i++)
        {
            var reply = client.ReadReply();
            Assert.Equal(0u, reply.Error);
            Assert.Equal(Region, reply.Data.Length);
            var wrong = reply.Data.AsSpan().IndexOfAnyExcept((byte)(i + 1));
            Assert.True(wrong < 0, $"reply {i} carries byte {(wrong < 0 ? 0 : reply.Data[wrong])} at {wrong}, not {i + 1}: its buffer was reused before it was read");
        }
        // Read now: the buffers go back without any further request.
        await WaitForAsync(() => pool.RentedBytes == 0, "the buffers of read replies were not returned");

        client.Disconnect();
        await serving.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Replies_the_client_never_reads_go_back_when_it_closes()
    {
        var (device, pool) = PatternedDevice();
        await using var server = new NbdServer(null, new TestLoggerFactory(output));
        var (clientEnd, serverEnd) = SocketPair.Create();
        var serving = server.ServeTransmissionAsync(new SocketTransport(serverEnd, 8 << 20, null), new NbdExport("", device), false);
        var client = RawNbdClient.ForTransmission(clientEnd, Size);

        ReadRegionsWithoutTakingReplies(client, structured: false);
        Assert.Equal((long)Regions * Region, pool.RentedBytes);
        client.Dispose(); // closed with four replies unread: the kernel drops them and their page references

        await serving.WaitAsync(TimeSpan.FromSeconds(30));
        await WaitForAsync(() => pool.RentedBytes == 0, "buffers lent to a closed client were not returned");
    }

    [Fact]
    public async Task A_connection_that_ends_with_replies_unread_releases_their_charges_but_not_their_memory()
    {
        var (device, pool) = PatternedDevice();
        await using var server = new NbdServer(null, new TestLoggerFactory(output));
        var export = new NbdExport("", device);
        var (leavingEnd, serverEnd) = SocketPair.Create();
        var serving = server.ServeTransmissionAsync(new SocketTransport(serverEnd, 8 << 20, null), export, false);
        using var leaving = RawNbdClient.ForTransmission(leavingEnd, Size);

        ReadRegionsWithoutTakingReplies(leaving, structured: false);
        leaving.Disconnect(); // the connection ends; its four replies wait unread in the socket
        await serving.WaitAsync(TimeSpan.FromSeconds(30));
        // Charged to nobody now, as a copy the kernel held would be...
        Assert.Equal(0, pool.RentedBytes);
        var allocated = pool.AllocatedBytes;

        // ...but not reused: another client's reads of other data take new memory.
        var (otherEnd, otherServerEnd) = SocketPair.Create();
        var other = server.ServeTransmissionAsync(new SocketTransport(otherServerEnd, 8 << 20, null), export, false);
        using (var client = RawNbdClient.ForTransmission(otherEnd, Size))
        {
            var zeros = new byte[Region];
            for (var i = 0; i < Regions; i++) client.Read((ulong)(Regions + i) * Region, Region);
            for (var i = 0; i < Regions; i++) Assert.Equal(zeros, client.ReadReply().Data);
            client.Disconnect();
        }
        await other.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(pool.AllocatedBytes > allocated, "the other client's reads reused the unread replies' memory");

        for (var i = 0; i < Regions; i++)
        {
            var reply = leaving.ReadReply();
            Assert.True(reply.Data.AsSpan().IndexOfAnyExcept((byte)(i + 1)) < 0, $"unread reply {i} changed after its connection ended");
        }
    }

    [Fact]
    public async Task Payloads_below_the_threshold_are_copied_and_returned_at_once()
    {
        var (device, pool) = PatternedDevice();
        await using var server = new NbdServer(new NbdServerOptions { SendPagesThreshold = 2 * Region }, new TestLoggerFactory(output));
        var (clientEnd, serverEnd) = SocketPair.Create();
        var serving = server.ServeTransmissionAsync(new SocketTransport(serverEnd, 8 << 20, null), new NbdExport("", device), false);
        using var client = RawNbdClient.ForTransmission(clientEnd, Size);

        ReadRegionsWithoutTakingReplies(client, structured: false);
        await WaitForAsync(() => pool.RentedBytes == 0, "copied replies kept their buffers");
        for (var i = 0; i < Regions; i++)
            Assert.True(client.ReadReply().Data.AsSpan().IndexOfAnyExcept((byte)(i + 1)) < 0, $"reply {i} carries other data");

        client.Disconnect();
        await serving.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
