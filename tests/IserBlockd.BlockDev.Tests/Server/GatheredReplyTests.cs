using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Streams;
using IserBlockd.BlockDev.Tests.Support;
using IserBlockd.Primitives.Native;
using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>
/// READ replies leave in gathered sends straight from the buffers the device read into. A socket that takes only part
/// of a send at a time (a small send buffer, a client that reads late) must still get every reply whole, in order,
/// with the data of its own request, and a failed read among them carries no data.
/// </summary>
public class GatheredReplyTests(ITestOutputHelper output)
{
    private const long Size = 64 << 20;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Replies_larger_than_the_socket_takes_at_once_arrive_whole_and_in_order(bool structured)
    {
        var data = new byte[Size];
        Random.Shared.NextBytes(data);
        var device = new ControlledDevice(new MemoryBlockDevice(Size));
        device.Inner.Write(0, data);
        const long failingOffset = 40 << 20;
        device.Fault = (op, offset) => op == DeviceOperation.Read && offset == failingOffset
            ? new BlockDeviceException(BlockError.IoError, "a bad block") : null;
        await using var server = new NbdServer(null, new TestLoggerFactory(output));
        var (clientEnd, serverEnd) = SocketPair.Create();
        serverEnd.SendBufferSize = 4096; // the kernel's minimum: every send is partial
        var serving = server.ServeTransmissionAsync(new SocketTransport(serverEnd), new NbdExport("", device),
            structured);
        using var client = RawNbdClient.ForTransmission(clientEnd, (ulong)Size);
        client.StructuredReplies = structured;

        // Small and large reads mixed, more than one gathered send holds, and one that fails.
        var lengths = new[] { 4096, 512, 65536, 4096, 1 << 20, 8192, 4096, 131072 };
        var requests = new List<(ulong Handle, long Offset, int Length)>();
        for (var i = 0; i < 96; i++)
        {
            var length = lengths[i % lengths.Length];
            var offset = i == 50 ? failingOffset : (long)Random.Shared.Next(0, (int)((Size - length) / 512)) * 512;
            requests.Add((client.Read((ulong)offset, (uint)length), offset, length));
        }
        await Task.Delay(200); // let the server fill the socket and fall back to waiting for room
        for (var i = 0; i < requests.Count; i++)
        {
            var reply = client.ReadReply();
            var (handle, offset, length) = requests[i];
            Assert.Equal(handle, reply.Handle);
            if (offset == failingOffset)
            {
                Assert.Equal((uint)BlockError.IoError, reply.Error);
                Assert.Empty(reply.Data);
                continue;
            }
            Assert.Equal(0u, reply.Error);
            Assert.True(data.AsSpan((int)offset, length).SequenceEqual(reply.Data), $"reply {i} ({length} bytes at {offset}) carries other data");
        }
        client.Disconnect();
        await serving.WaitAsync(TimeSpan.FromSeconds(60));
    }
}
