using IserBlockd.BlockDev.Buffers;
using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Tests.Support;
using IserBlockd.Primitives.Native;
using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>
/// What one client may hold: requests and payload bytes in flight per connection (back-pressure: the server
/// stops reading), the export's and all clients' shares of a pool that kernel devices use too, and the send
/// timeout that cuts off a client that stopped reading its replies.
/// </summary>
public sealed class ResourceBoundsTests(ITestOutputHelper output)
{
    private const long Size = 64L << 20;
    private const uint Chunk = 1 << 20;

    /// <summary>Pipelines <paramref name="count"/> 1 MiB READs and never reads a reply.</summary>
    /// <summary>A memory export on a 64 MiB pool whose sends must complete within 2 s, with the kernel's default socket buffers.</summary>
    private InProcessNbdServer ServerWithTwoSecondSendTimeout(out PinnedBlockBufferPool pool)
    {
        pool = new PinnedBlockBufferPool(new PinnedBlockBufferPoolOptions { MaxRentedBytes = 64L << 20 });
        var device = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { Buffers = pool });
        return new InProcessNbdServer(output, new NbdServerOptions
        {
            SendTimeout = TimeSpan.FromSeconds(2),
            SocketSendBufferBytes = null,
        }, new NbdExport("", device));
    }

    private static void FloodWithReads(RawNbdClient client, int count)
    {
        for (var i = 0; i < count; i++) client.Read((ulong)(i % 64) * Chunk, Chunk);
    }

    [Fact]
    public async Task A_client_that_stops_reading_holds_only_its_bytes_in_flight_and_others_are_served()
    {
        var pool = new PinnedBlockBufferPool(new PinnedBlockBufferPoolOptions { MaxRentedBytes = 64L << 20 });
        var hostileDevice = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { Buffers = pool });
        var otherDevice = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { Buffers = pool });
        var kernelDevice = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { Buffers = pool });
        await using var server = new InProcessNbdServer(output, new NbdServerOptions
        {
            MaxBytesInFlight = 8L << 20,
            SendTimeout = Timeout.InfiniteTimeSpan,
            SocketSendBufferBytes = null,
        }, new NbdExport("a", hostileDevice), new NbdExport("b", otherDevice));

        using var hostile = server.Connect("a");
        FloodWithReads(hostile, 256);
        await Task.Delay(500);
        // Replies that cannot leave pin their buffers: no more than the connection's cap (+ one request admitted alone).
        Assert.InRange(pool.RentedBytes, 1, 8L << 20);
        Assert.InRange(hostileDevice.Statistics.Reads, 1, 16);

        using var other = server.Connect("b");
        var data = Enumerable.Range(0, (int)Chunk).Select(i => (byte)i).ToArray();
        for (var i = 0; i < 32; i++) Assert.Equal(0u, other.WriteSync((ulong)i * Chunk, data).Error);
        Assert.Equal(data, other.ReadSync(5 * Chunk, Chunk).Data);

        // A kernel socket (no handshake) on the same pool is served too.
        var (kernelEnd, serverEnd) = SocketPair.Create();
        var kernelConnection = server.Server.ServeTransmissionAsync(serverEnd, new NbdExport("", kernelDevice));
        using (var kernel = RawNbdClient.ForTransmission(kernelEnd, (ulong)Size))
        {
            Assert.Equal(0u, kernel.WriteSync(0, data).Error);
            Assert.Equal(data, kernel.ReadSync(0, Chunk).Data);
            kernel.Disconnect();
        }
        await kernelConnection.WaitAsync(TimeSpan.FromSeconds(10));

        hostile.Dispose(); // its pending sends fail; everything it held comes back
        await Wait.Until(() => pool.RentedBytes == 0);
    }

    [Fact]
    public async Task Clients_of_all_exports_together_hold_no_more_than_half_of_their_pool()
    {
        // A 32 MiB pool: clients together 16 MiB, one export 8 MiB, one connection 4 MiB.
        var pool = new PinnedBlockBufferPool(new PinnedBlockBufferPoolOptions { MaxRentedBytes = 32L << 20 });
        var exports = Enumerable.Range(0, 4).Select(i => new NbdExport($"e{i}", new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { Buffers = pool }))).ToArray();
        await using var server = new InProcessNbdServer(output, new NbdServerOptions
        {
            SendTimeout = Timeout.InfiniteTimeSpan,
            SocketSendBufferBytes = null,
        }, exports);

        var hostile = new List<RawNbdClient>();
        foreach (var export in exports)
            for (var i = 0; i < 2; i++)
            {
                var client = server.Connect(export.Name);
                FloodWithReads(client, 64);
                hostile.Add(client);
            }
        await Task.Delay(700);
        Assert.InRange(pool.Shares.Clients.Used, 1, 16L << 20);
        Assert.InRange(pool.RentedBytes, 1, 16L << 20); // the other 16 MiB stay for kernel devices

        foreach (var client in hostile) client.Dispose();
        await Wait.Until(() => pool.RentedBytes == 0 && pool.Shares.Clients.Used == 0);
        using var after = server.Connect("e0");
        Assert.Equal(0u, after.ReadSync(0, Chunk).Error);
    }

    /// <summary>
    /// An iSER device's registered pool is about 45 MiB, a tenth of the TCP pool the server's defaults (64 MiB per
    /// connection, 128 MiB per export) are sized for: the shares must come from the pool the export rents from, or
    /// one client holds all of it.
    /// </summary>
    [Fact]
    public async Task On_a_small_pool_the_shares_come_from_the_pool_so_a_hostile_client_leaves_other_exports_and_the_kernel_served()
    {
        var pool = new PinnedBlockBufferPool(new PinnedBlockBufferPoolOptions { MaxRentedBytes = 24L << 20, MaxBufferSize = 1 << 20 });
        var hostileDevice = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { Buffers = pool });
        var otherDevice = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { Buffers = pool });
        var kernelDevice = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { Buffers = pool });
        await using var server = new InProcessNbdServer(output, new NbdServerOptions
        {
            SendTimeout = Timeout.InfiniteTimeSpan, // the defaults otherwise: 64 MiB per connection, 128 MiB per export
            SocketSendBufferBytes = null,
        }, new NbdExport("a", hostileDevice), new NbdExport("b", otherDevice));

        var hostile = Enumerable.Range(0, 4).Select(_ => server.Connect("a")).ToList();
        foreach (var client in hostile) FloodWithReads(client, 64);
        await Task.Delay(700);
        // One export's clients: a quarter of the pool (6 MiB) however many connections, each at most 3 MiB.
        output.WriteLine($"hostile clients hold {pool.RentedBytes >> 20} MiB of the 24 MiB pool");
        Assert.InRange(pool.RentedBytes, 1, 6L << 20);
        Assert.InRange(hostileDevice.Statistics.Reads, 1, 6);

        // Another export's client gets its own quarter: many requests in flight, each answered.
        using var other = server.Connect("b");
        var data = Enumerable.Range(0, (int)Chunk).Select(i => (byte)(i * 7)).ToArray();
        for (var i = 0; i < 8; i++) other.Write((ulong)i * Chunk, data);
        for (var i = 0; i < 8; i++) Assert.Equal(0u, other.ReadReply().Error);
        for (var i = 0; i < 8; i++) other.Read((ulong)i * Chunk, Chunk);
        for (var i = 0; i < 8; i++) Assert.Equal(data, other.ReadReply().Data);

        // A kernel socket is not counted in the clients' half: 12 MiB in flight at once are served.
        var (kernelEnd, serverEnd) = SocketPair.Create();
        var kernelConnection = server.Server.ServeTransmissionAsync(serverEnd, new NbdExport("", kernelDevice));
        using (var kernel = RawNbdClient.ForTransmission(kernelEnd, (ulong)Size))
        {
            for (var i = 0; i < 12; i++) kernel.Write((ulong)i * Chunk, data);
            for (var i = 0; i < 12; i++) Assert.Equal(0u, kernel.ReadReply().Error);
            Assert.Equal(data, kernel.ReadSync(11 * Chunk, Chunk).Data);
            kernel.Disconnect();
        }
        await kernelConnection.WaitAsync(TimeSpan.FromSeconds(10));

        foreach (var client in hostile) client.Dispose();
        await Wait.Until(() => pool.RentedBytes == 0 && pool.Shares.Clients.Used == 0);
    }

    [Fact]
    public async Task A_client_that_takes_up_no_reply_is_cut_off_after_the_send_timeout_and_its_buffers_return()
    {
        await using var server = ServerWithTwoSecondSendTimeout(out var pool);

        using var hostile = server.Connect();
        var started = DateTime.UtcNow;
        FloodWithReads(hostile, 256);
        await Wait.Until(() => server.Server.ConnectionCount == 0);
        var elapsed = DateTime.UtcNow - started;
        output.WriteLine($"cut off after {elapsed.TotalSeconds:0.0} s");
        Assert.InRange(elapsed, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(20));
        await Wait.Until(() => pool.RentedBytes == 0, "the cut-off client's buffers to return");
        Assert.True(hostile.WaitForServerClose(TimeSpan.FromSeconds(5)));

        // A client that reads slowly but steadily (a reply per 100 ms: the pending send waits at most ~0.4 s, a
        // fifth of the timeout, which leaves room for a loaded machine) is not cut off.
        using var patient = server.Connect();
        for (var i = 0; i < 4; i++) patient.Read((ulong)i * Chunk, Chunk);
        for (var i = 0; i < 4; i++)
        {
            Thread.Sleep(100); // on this thread, as above: an await could resume seconds late under load
            Assert.Equal(0u, patient.ReadReply().Error);
        }
    }

    [Fact]
    public async Task Each_send_has_its_own_deadline_so_a_client_that_keeps_taking_replies_is_never_cut_off()
    {
        await using var server = ServerWithTwoSecondSendTimeout(out var pool);

        // Sends for twice the timeout, each taken up at once: the deadline of the first is long past, but every
        // send met its own. The pause is a sleep on this thread, not an await: under a loaded test run the thread
        // pool can take seconds to resume an await, and the client would then really stop taking replies.
        using var client = server.Connect();
        var steady = System.Diagnostics.Stopwatch.StartNew();
        var replies = 0;
        while (steady.Elapsed < TimeSpan.FromSeconds(4))
        {
            for (var i = 0; i < 4; i++) client.Read((ulong)i * Chunk, Chunk);
            for (var i = 0; i < 4; i++) Assert.Equal(0u, client.ReadReply().Error);
            replies += 4;
            Thread.Sleep(20);
        }
        output.WriteLine($"{replies} replies over {steady.Elapsed.TotalSeconds:0.0} s");
        Assert.Equal(1, server.Server.ConnectionCount);

        // Then it stops reading: cut off once the send that stalls is 2 s old, not before.
        var stopped = System.Diagnostics.Stopwatch.StartNew();
        FloodWithReads(client, 256);
        await Wait.Until(() => server.Server.ConnectionCount == 0);
        output.WriteLine($"cut off {stopped.Elapsed.TotalSeconds:0.00} s after it stopped reading");
        Assert.InRange(stopped.Elapsed, TimeSpan.FromSeconds(1.95), TimeSpan.FromSeconds(20));
        await Wait.Until(() => pool.RentedBytes == 0, "the cut-off client's buffers to return");
    }

    [Fact]
    public async Task Byte_budget_waiters_are_served_in_order_and_cancelled_waits_hold_nothing()
    {
        var budget = new ByteBudget(10);
        await budget.AcquireAsync(8, CancellationToken.None);
        var first = budget.AcquireAsync(5, CancellationToken.None).AsTask();
        using var cancel = new CancellationTokenSource();
        var cancelled = budget.AcquireAsync(4, cancel.Token).AsTask();
        var third = budget.AcquireAsync(1, CancellationToken.None).AsTask();
        Assert.False(first.IsCompleted);
        Assert.False(third.IsCompleted); // first come, first served: no overtaking a larger waiter
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        budget.Release(8);
        await first.WaitAsync(TimeSpan.FromSeconds(5));
        await third.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(6, budget.Used);
        budget.Release(5);
        budget.Release(1);
        Assert.Equal(0, budget.Used);
        await budget.AcquireAsync(100, CancellationToken.None); // larger than the whole budget: charged all of it
        Assert.Equal(10, budget.Used);
        budget.Release(100);
        Assert.Equal(0, budget.Used);
    }
}
