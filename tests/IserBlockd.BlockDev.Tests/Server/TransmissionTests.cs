using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Tests.Support;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>The transmission phase: data integrity, pipelining, out-of-order replies, every command.</summary>
public class TransmissionTests(ITestOutputHelper output)
{
    private const long Size = 64 << 20;

    private static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    [Theory]
    [InlineData(512, false)]
    [InlineData(4096, false)]
    [InlineData(16 << 10, false)]     // at the copy threshold
    [InlineData(64 << 10, false)]     // received straight into the device buffer
    [InlineData(1 << 20, false)]
    [InlineData(4 << 20, true)]
    [InlineData(4096, true)]
    public async Task Written_data_reads_back_byte_for_byte(int length, bool structured)
    {
        var device = new MemoryBlockDevice(Size);
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect(structuredReplies: structured);
        var data = RandomBytes(length, length);
        const ulong offset = 3 << 20;

        Assert.Equal(0u, client.WriteSync(offset, data).Error);
        var stored = new byte[length];
        device.Read((long)offset, stored);
        Assert.Equal(data, stored);

        var reply = client.ReadSync(offset, (uint)length);
        Assert.Equal(0u, reply.Error);
        Assert.Equal(structured, reply.Structured);
        Assert.Equal(data, reply.Data);
    }

    [Fact]
    public async Task Structured_read_reply_is_one_data_chunk_marked_done()
    {
        var device = new MemoryBlockDevice(Size);
        device.Write(8192, Enumerable.Repeat((byte)7, 4096).ToArray());
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect(structuredReplies: true);
        client.Read(8192, 4096, NbdCommandFlags.DontFragment);
        var header = NbdStructuredReplyHeader.Read(client.ReceiveExactly(NbdStructuredReplyHeader.Size));
        Assert.Equal(NbdReplyChunkType.OffsetData, header.Type);
        Assert.Equal(NbdReplyFlags.Done, header.Flags);
        Assert.Equal(4096u + 8, header.Length);
        var payload = client.ReceiveExactly((int)header.Length);
        Assert.Equal(8192ul, System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(payload));
        ByteAssert.All(payload[8..], 7);
    }

    [Fact]
    public async Task Zero_length_requests_succeed_without_touching_the_device()
    {
        var device = new MemoryBlockDevice(Size);
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect(structuredReplies: true);
        Assert.Equal(0u, client.ReadSync(0, 0).Error);
        Assert.Equal(0u, client.WriteSync(0, []).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.Trim, 0, 0)).Error);
        Assert.Equal(0, device.Statistics.Reads + device.Statistics.Writes + device.Statistics.Trims);
    }

    [Fact]
    public async Task Replies_go_out_as_requests_complete_not_in_request_order()
    {
        var release = new TaskCompletionSource();
        var device = new ControlledDevice(new MemoryBlockDevice(Size))
        {
            Gate = (op, offset) => op == DeviceOperation.Read && offset == 0 ? release.Task : null,
        };
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        var slow = client.Read(0, 4096);
        var fast = client.Read(4096, 4096);
        var write = client.Write(8192, new byte[4096]);

        var first = client.ReadReply();
        var second = client.ReadReply();
        Assert.Equal([fast, write], new[] { first.Handle, second.Handle }.Order());
        release.SetResult();
        Assert.Equal(slow, client.ReadReply().Handle);
    }

    [Fact]
    public async Task Hundreds_of_pipelined_requests_are_all_answered_correctly()
    {
        var device = new MemoryBlockDevice(Size);
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        var random = new Random(42);
        var blocks = new Dictionary<ulong, byte[]>();
        var sizes = new[] { 512, 4096, 8192, 65536, 131072 };
        var writes = new HashSet<ulong>();
        ulong next = 0;
        for (var i = 0; i < 400; i++)
        {
            var data = RandomBytes(sizes[random.Next(sizes.Length)], i);
            blocks[next] = data;
            writes.Add(client.Write(next, data));
            next += (ulong)data.Length;
        }
        // reads queued behind the writes on the same socket are answered after them only if the
        // device finished the writes; the client does not wait between them
        for (var i = 0; i < 400; i++) Assert.True(writes.Remove(client.ReadReply().Handle));
        Assert.Empty(writes);

        var reads = blocks.ToDictionary(b => client.Read(b.Key, (uint)b.Value.Length), b => b.Value);
        for (var i = 0; i < reads.Count; i++)
        {
            var reply = client.ReadReply();
            Assert.Equal(0u, reply.Error);
            Assert.Equal(reads[reply.Handle], reply.Data);
        }
    }

    [Fact]
    public async Task Fua_write_reaches_the_device_as_fua()
    {
        var device = new ControlledDevice(new MemoryBlockDevice(Size));
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        Assert.True(client.Flags.HasFlag(NbdTransmissionFlags.SendFua));
        Assert.Equal(0u, client.WriteSync(0, new byte[4096], NbdCommandFlags.Fua).Error);
        Assert.Contains(device.Events, e => e is { Operation: DeviceOperation.Write, Fua: true, Completed: true });
        Assert.DoesNotContain(device.Events, e => e.Operation == DeviceOperation.Flush);
    }

    [Fact]
    public async Task Fua_on_a_device_with_only_a_cache_flush_is_a_write_then_a_flush()
    {
        var device = new ControlledDevice(new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions
        {
            Features = BlockDeviceFeatures.Flush | BlockDeviceFeatures.Trim | BlockDeviceFeatures.WriteZeroes,
        }));
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        Assert.True(client.Flags.HasFlag(NbdTransmissionFlags.SendFua));
        Assert.Equal(0u, client.WriteSync(0, new byte[4096], NbdCommandFlags.Fua).Error);
        var completed = device.Events.Where(e => e.Completed).Select(e => (e.Operation, e.Fua)).ToArray();
        Assert.Equal([(DeviceOperation.Write, false), (DeviceOperation.Flush, false)], completed);
    }

    [Fact]
    public async Task Trim_and_write_zeroes_read_back_as_zeroes()
    {
        var device = new MemoryBlockDevice(Size);
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        var data = RandomBytes(1 << 20, 1);
        Assert.Equal(0u, client.WriteSync(0, data).Error);

        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.Trim, 0, 128 << 10)).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.WriteZeroes, 256 << 10, 128 << 10)).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.WriteZeroes, 512 << 10, 128 << 10, NbdCommandFlags.NoHole)).Error);

        var back = client.ReadSync(0, 1 << 20).Data;
        ByteAssert.All(back[..(128 << 10)], 0);
        Assert.Equal(data[(128 << 10)..(256 << 10)], back[(128 << 10)..(256 << 10)]);
        ByteAssert.All(back[(256 << 10)..(384 << 10)], 0);
        ByteAssert.All(back[(512 << 10)..(640 << 10)], 0);
        Assert.Equal(data[(640 << 10)..], back[(640 << 10)..]);
        // trim and plain write-zeroes may drop storage; NO_HOLE keeps it
        Assert.False(device.IsAllocated(0));
        Assert.False(device.IsAllocated(256 << 10));
        Assert.True(device.IsAllocated(512 << 10));
    }

    [Fact]
    public async Task Write_zeroes_on_a_device_without_it_is_done_with_writes()
    {
        var device = new ControlledDevice(new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { Features = BlockDeviceFeatures.Flush }));
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        Assert.True(client.Flags.HasFlag(NbdTransmissionFlags.SendWriteZeroes));
        Assert.False(client.Flags.HasFlag(NbdTransmissionFlags.SendTrim));
        Assert.Equal(0u, client.WriteSync(0, Enumerable.Repeat((byte)1, 3 << 20).ToArray()).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.WriteZeroes, 4096, (2 << 20) + 4096)).Error);
        Assert.DoesNotContain(device.Events, e => e.Operation == DeviceOperation.WriteZeroes);
        var back = client.ReadSync(0, 3 << 20).Data;
        ByteAssert.All(back[..4096], 1);
        ByteAssert.All(back[4096..((2 << 20) + 8192)], 0);
        ByteAssert.All(back[((2 << 20) + 8192)..], 1);
    }

    [Fact]
    public async Task Disconnect_still_answers_requests_already_started()
    {
        var release = new TaskCompletionSource();
        var device = new ControlledDevice(new MemoryBlockDevice(Size)) { Gate = (op, _) => op == DeviceOperation.Write ? release.Task : null };
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        var write = client.Write(0, new byte[4096]);
        client.Disconnect();
        await Task.Delay(100);
        release.SetResult();
        var reply = client.ReadReply();
        Assert.Equal((write, 0u), (reply.Handle, reply.Error));
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Device_errors_reach_the_client_with_their_errno()
    {
        var device = new ControlledDevice(new MemoryBlockDevice(Size))
        {
            Fault = (op, offset) => offset switch
            {
                4096 => new BlockDeviceException(BlockError.NoSpace, "thin pool full"),
                8192 => new InvalidOperationException("the target went away"),
                _ => null,
            },
        };
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var simple = server.Connect();
        Assert.Equal(BlockError.NoSpace, simple.WriteSync(4096, new byte[512]).BlockError);
        var failedRead = simple.ReadSync(8192, 512);
        Assert.Equal(BlockError.IoError, failedRead.BlockError);
        Assert.Empty(failedRead.Data); // no payload after an error header
        Assert.Equal(0u, simple.ReadSync(0, 512).Error); // and the stream is still in step

        using var structured = server.Connect(structuredReplies: true);
        var reply = structured.ReadSync(8192, 512);
        Assert.Equal(BlockError.IoError, reply.BlockError);
        Assert.Equal("the target went away", reply.ErrorMessage);
    }

    [Fact]
    public async Task Several_connections_share_one_export()
    {
        var device = new MemoryBlockDevice(Size);
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        var clients = Enumerable.Range(0, 4).Select(_ => server.Connect()).ToArray();
        try
        {
            Assert.All(clients, c => Assert.True(c.Flags.HasFlag(NbdTransmissionFlags.CanMultiConn)));
            await Task.WhenAll(clients.Select((c, i) => Task.Run(() =>
            {
                for (var j = 0; j < 50; j++)
                    Assert.Equal(0u, c.WriteSync((ulong)(i * (1 << 20) + j * 4096), RandomBytes(4096, i * 1000 + j)).Error);
            })));
            // each client sees what the others wrote
            for (var i = 0; i < 4; i++)
            for (var j = 0; j < 50; j++)
                Assert.Equal(RandomBytes(4096, i * 1000 + j), clients[(i + 1) % 4].ReadSync((ulong)(i * (1 << 20) + j * 4096), 4096).Data);
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }

    [Fact]
    public async Task A_device_without_multi_connection_does_not_offer_it()
    {
        var device = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { Features = BlockDeviceFeatures.Flush | BlockDeviceFeatures.Fua });
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        Assert.False(client.Flags.HasFlag(NbdTransmissionFlags.CanMultiConn));
    }

    [Fact]
    public async Task Server_shutdown_finishes_started_requests_then_closes()
    {
        var release = new TaskCompletionSource();
        var device = new ControlledDevice(new MemoryBlockDevice(Size)) { Gate = (op, _) => op == DeviceOperation.Read ? release.Task : null };
        var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        var read = client.Read(0, 4096);
        await Wait.Until(() => device.Events.Any(e => e.Operation == DeviceOperation.Read));
        var stopping = server.DisposeAsync().AsTask();
        await Task.Delay(100);
        Assert.False(stopping.IsCompleted);
        release.SetResult();
        var reply = client.ReadReply();
        Assert.Equal((read, 0u), (reply.Handle, reply.Error));
        await stopping.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Shutdown_cuts_off_a_client_that_stopped_reading_after_the_timeout()
    {
        var device = new MemoryBlockDevice(Size);
        var server = new InProcessNbdServer(output, new NbdServerOptions
        {
            ShutdownTimeout = TimeSpan.FromMilliseconds(500),
            SocketSendBufferBytes = null,
            MaxRequestsInFlight = 64,
        }, new NbdExport("", device));
        using var client = server.Connect();
        // 256 MiB of READ replies that the client never reads: the server's sends stall.
        for (var i = 0; i < 256; i++) client.Read((ulong)(i % 64) << 20, 1 << 20);
        await Task.Delay(300);
        await server.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(0, server.Server.ConnectionCount);
    }

    [Fact]
    public async Task A_buffer_provider_that_cannot_serve_a_request_fails_only_that_request()
    {
        var device = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions
        {
            MaxTransferBytes = 1 << 20,
            Buffers = new IserBlockd.BlockDev.Buffers.PinnedBlockBufferPool(new() { MaxBufferSize = 64 << 10 }),
        });
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        Assert.Equal(BlockError.OutOfMemory, client.WriteSync(0, new byte[128 << 10]).BlockError);
        Assert.Equal(BlockError.OutOfMemory, client.ReadSync(0, 128 << 10).BlockError);
        Assert.Equal(0, device.Statistics.Writes);
        Assert.Equal(0u, client.WriteSync(0, Enumerable.Repeat((byte)4, 4096).ToArray()).Error);
        ByteAssert.All(client.ReadSync(0, 4096).Data, 4);
    }
}
