using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Nbd.Streams;
using IserBlockd.BlockDev.Tests.Support;
using IserBlockd.TestSupport;
using Xunit.Abstractions;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Tests.Server;

[CollectionDefinition(nameof(NbdServerAllocationMeasurement), DisableParallelization = true)]
public sealed class NbdServerAllocationMeasurement;

/// <summary>
/// Guards the zero-allocation request path: after warm-up, thousands of pipelined READs and WRITEs
/// through the server (socket, parser, device, reply writer) must not allocate managed memory.
/// The counter is process-wide, so this collection runs alone.
/// </summary>
[Collection(nameof(NbdServerAllocationMeasurement))]
public class NbdServerAllocationTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(4096, 16, false)]      // payloads copied through the connection buffers
    [InlineData(4096, 16, true)]       // structured replies
    [InlineData(128 << 10, 8, false)]  // payloads received into / sent from device buffers directly
    [InlineData(1 << 20, 2, true)]
    public async Task Steady_state_requests_allocate_nothing(int payload, int perKind, bool structured)
    {
        var device = new MemoryBlockDevice(64 << 20);
        device.Write(0, new byte[16 << 20]); // storage allocated up front, as on a real disk
        await using var server = new NbdServer();
        var (clientEnd, serverEnd) = SocketPair.Create();
        var transport = new SocketTransport(serverEnd);
        var serving = server.ServeTransmissionAsync(transport, new NbdExport("", device), structured);
        using var client = clientEnd;

        // One batch: perKind READs and perKind WRITEs, pipelined; replies come back in any order, so
        // only their total size is checked here (their content is checked by the other tests).
        var batch = new byte[perKind * (2 * NbdRequest.Size + payload)];
        var position = 0;
        for (var i = 0; i < perKind; i++)
        {
            new NbdRequest(0, NbdCommand.Read, (ulong)i, (ulong)(i * payload), (uint)payload).Write(batch.AsSpan(position));
            position += NbdRequest.Size;
            new NbdRequest(0, NbdCommand.Write, (ulong)(1000 + i), (ulong)((perKind + i) * payload), (uint)payload).Write(batch.AsSpan(position));
            position += NbdRequest.Size + payload;
        }
        var readReply = structured ? NbdOffsetDataChunk.PrefixSize : NbdSimpleReply.Size;
        var replyBytes = perKind * (readReply + payload + NbdSimpleReply.Size);
        var replies = new byte[replyBytes];

        void RunBatch()
        {
            client.Send(batch);
            var received = 0;
            while (received < replyBytes)
            {
                var n = client.Receive(replies.AsSpan(received));
                if (n == 0) throw new EndOfStreamException();
                received += n;
            }
        }

        var iterations = (int)Math.Clamp((128L << 20) / (payload * 2L * perKind), 300, 1000);
        for (var i = 0; i < iterations; i++) RunBatch(); // warm-up: pools fill, JIT tiers up
        // Three windows; the quietest counts. A real per-request allocation shows in every window,
        // the runtime's occasional background work (timers, thread-pool bookkeeping) does not.
        using var sampler = new AllocationSampler();
        sampler.Start();
        var allocated = long.MaxValue;
        for (var window = 0; window < 3; window++)
        {
            var before = GC.GetTotalAllocatedBytes(precise: true);
            for (var i = 0; i < iterations; i++) RunBatch();
            allocated = Math.Min(allocated, GC.GetTotalAllocatedBytes(precise: true) - before);
        }
        sampler.Stop();
        foreach (var (type, samples) in sampler.Types) output.WriteLine($"allocation samples: {type} x{samples}");

        var requests = iterations * perKind * 2L;
        output.WriteLine($"{requests} requests of {payload} bytes: {allocated} bytes allocated ({(double)allocated / requests:F3} per request)");
        // Anything allocated per request would be at least one object (24+ bytes) each time.
        Assert.True(allocated < 4096 + requests / 4, $"{allocated} bytes allocated for {requests} requests");

        client.Shutdown(System.Net.Sockets.SocketShutdown.Both);
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
