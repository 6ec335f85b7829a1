using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Tests.Support;
using IserBlockd.TestSupport;
using Xunit.Abstractions;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>
/// <see cref="NbdServer.ServeTransmissionAsync(System.Net.Sockets.Socket, NbdExport, CancellationToken)"/>:
/// no handshake, simple replies only, on one end of a socketpair — as the kernel's /dev/nbdX uses it.
/// </summary>
public class TransmissionOnlyTests(ITestOutputHelper output)
{
    private const long Size = 32 << 20;

    [Fact]
    public async Task Serves_simple_replies_on_a_socketpair_until_disconnect()
    {
        var device = new MemoryBlockDevice(Size);
        var export = new NbdExport("kernel", device);
        await using var server = new NbdServer(null, new TestLoggerFactory(output));
        var (kernelEnd, serverEnd) = SocketPair.Create();
        var serving = server.ServeTransmissionAsync(serverEnd, export);
        using var client = RawNbdClient.ForTransmission(kernelEnd, (ulong)Size);

        var data = Enumerable.Range(0, 128 << 10).Select(i => (byte)(i * 31)).ToArray();
        Assert.Equal(0u, client.WriteSync(4096, data, NbdCommandFlags.Fua).Error);
        var reply = client.ReadSync(4096, (uint)data.Length);
        Assert.False(reply.Structured);
        Assert.Equal(data, reply.Data);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.Flush, 0, 0)).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.Trim, 0, 65536)).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.WriteZeroes, 65536, 65536, NbdCommandFlags.NoHole | NbdCommandFlags.Fua)).Error);
        ByteAssert.All(client.ReadSync(0, 131072).Data, 0);

        client.Disconnect();
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(5)));
        Assert.Equal(0, server.ConnectionCount);
    }

    [Fact]
    public async Task Ends_when_the_peer_closes_its_end()
    {
        await using var server = new NbdServer();
        var (kernelEnd, serverEnd) = SocketPair.Create();
        var serving = server.ServeTransmissionAsync(serverEnd, new NbdExport("", new MemoryBlockDevice(Size)));
        kernelEnd.Dispose();
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Cancellation_answers_requests_already_started_then_closes()
    {
        var release = new TaskCompletionSource();
        var device = new ControlledDevice(new MemoryBlockDevice(Size)) { Gate = (op, _) => op == DeviceOperation.Write ? release.Task : null };
        await using var server = new NbdServer();
        var (kernelEnd, serverEnd) = SocketPair.Create();
        using var stop = new CancellationTokenSource();
        var serving = server.ServeTransmissionAsync(serverEnd, new NbdExport("", device), stop.Token);
        using var client = RawNbdClient.ForTransmission(kernelEnd, (ulong)Size);
        var write = client.Write(0, new byte[4096]);
        await Wait.Until(() => device.Events.Count > 0);
        stop.Cancel();
        await Task.Delay(100);
        Assert.False(serving.IsCompleted);
        release.SetResult();
        var reply = client.ReadReply();
        Assert.Equal((write, 0u), (reply.Handle, reply.Error));
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Several_sockets_serve_one_export_at_once()
    {
        var device = new MemoryBlockDevice(Size);
        var export = new NbdExport("", device);
        await using var server = new NbdServer();
        var pairs = Enumerable.Range(0, 4).Select(_ => SocketPair.Create()).ToArray();
        var serving = pairs.Select(p => server.ServeTransmissionAsync(p.Right, export)).ToArray();
        var clients = pairs.Select(p => RawNbdClient.ForTransmission(p.Left, (ulong)Size)).ToArray();
        await Task.WhenAll(clients.Select((c, i) => Task.Run(() =>
        {
            for (var j = 0; j < 64; j++)
            {
                var data = Enumerable.Repeat((byte)(i * 64 + j), 4096).ToArray();
                Assert.Equal(0u, c.WriteSync((ulong)((i * 64 + j) * 4096), data).Error);
            }
        })));
        for (var k = 0; k < 256; k++)
            ByteAssert.All(clients[k % 4].ReadSync((ulong)(k * 4096), 4096).Data, (byte)k);
        foreach (var c in clients) c.Disconnect();
        await Task.WhenAll(serving).WaitAsync(TimeSpan.FromSeconds(10));
        foreach (var c in clients) c.Dispose();
    }

    [Fact]
    public async Task Write_zeroes_is_not_held_to_a_maximum_the_kernel_never_learned_but_reads_are()
    {
        var device = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { MaxTransferBytes = 1 << 20 });
        device.Write(0, Enumerable.Repeat((byte)9, 8 << 20).ToArray());
        await using var server = new NbdServer();
        var (kernelEnd, serverEnd) = SocketPair.Create();
        var serving = server.ServeTransmissionAsync(serverEnd, new NbdExport("", device));
        using var client = RawNbdClient.ForTransmission(kernelEnd, (ulong)Size);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.WriteZeroes, 0, 4 << 20, NbdCommandFlags.NoHole)).Error);
        var check = new byte[8 << 20];
        device.Read(0, check);
        Assert.True(check.AsSpan(0, 4 << 20).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(check.AsSpan(4 << 20).IndexOfAnyExcept((byte)9) < 0);
        Assert.Equal(BlockError.InvalidArgument, client.ReadSync(0, 2 << 20).BlockError);
        client.Disconnect();
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>The kernel's connections were set up with the old size; once the LUN grows (rescan, capacity-changed
    /// unit attention) and /dev/nbdX is resized, requests past the old end must be served on the same connections,
    /// or an online resize2fs fails ("can't read last block"); after a shrink, past the new end is refused.</summary>
    [Fact]
    public async Task Requests_are_checked_against_the_device_size_now_not_at_connect()
    {
        var device = new ControlledDevice(new MemoryBlockDevice(2 * Size)) { Size = Size };
        await using var server = new NbdServer(null, new TestLoggerFactory(output));
        var (kernelEnd, serverEnd) = SocketPair.Create();
        var serving = server.ServeTransmissionAsync(serverEnd, new NbdExport("kernel", device));
        using var client = RawNbdClient.ForTransmission(kernelEnd, (ulong)Size);
        var beyondOldEnd = (ulong)Size + (1 << 20);
        Assert.Equal(BlockError.InvalidArgument, client.ReadSync(beyondOldEnd, 4096).BlockError);

        device.Size = 2 * Size;
        var data = Enumerable.Range(0, 4096).Select(i => (byte)(i * 7 + 1)).ToArray();
        Assert.Equal(0u, client.WriteSync(beyondOldEnd, data).Error);
        Assert.Equal(data, client.ReadSync(beyondOldEnd, 4096).Data);
        Assert.Equal(0u, client.ReadSync((ulong)(2 * Size) - 4096, 4096).Error);

        device.Size = Size / 2;
        Assert.Equal(BlockError.InvalidArgument, client.ReadSync((ulong)Size / 2, 4096).BlockError);
        Assert.Equal(0u, client.ReadSync((ulong)Size / 2 - 4096, 4096).Error);
        client.Disconnect();
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
