using System.Buffers;

namespace IserBlockd.Rdma.Tests;

public sealed class RegisteredBufferPoolTests
{
    private static RegisteredBufferPoolOptions Small => new()
    {
        SizeClasses = [new(4096, 4), new(64 * 1024, 2), new(1024 * 1024, 2)],
    };

    [Fact]
    public void Registers_one_aligned_region_per_size_class()
    {
        var registrar = new FakeMemoryRegistrar();
        using var pool = new RegisteredBufferPool(registrar, Small);
        Assert.Equal(3, registrar.Registrations.Count);
        Assert.Equal([4096u * 4, 64u * 1024 * 2, 1024u * 1024 * 2], registrar.Registrations.Select(r => (uint)r.Length));
        Assert.All(registrar.Registrations, r => Assert.Equal(0, (long)r.Address % 4096));
        Assert.Equal(1024 * 1024, pool.MaxBufferSize);
    }

    [Theory]
    [InlineData(0, 4096)]
    [InlineData(1, 4096)]
    [InlineData(4096, 4096)]
    [InlineData(4097, 64 * 1024)]
    [InlineData(128 * 1024, 1024 * 1024)]
    [InlineData(1024 * 1024, 1024 * 1024)]
    public async Task Rents_the_smallest_class_that_fits_with_exactly_the_requested_length(int length, int expectedCapacity)
    {
        var registrar = new FakeMemoryRegistrar();
        using var pool = new RegisteredBufferPool(registrar, Small);
        using var owner = await pool.RentAsync(length);
        Assert.Equal(length, owner.Memory.Length);
        var buffer = Assert.IsType<RegisteredBuffer>(owner);
        Assert.Equal(expectedCapacity, buffer.Capacity);
        Assert.Equal(0, (long)buffer.Address % 4096);
    }

    [Fact]
    public async Task Memory_handed_around_leads_back_to_its_address_and_keys()
    {
        var registrar = new FakeMemoryRegistrar();
        using var pool = new RegisteredBufferPool(registrar, Small);
        using var owner = await pool.RentAsync(64 * 1024);
        var buffer = (RegisteredBuffer)owner;
        var region = registrar.Registrations.Single(r => r.Contains(buffer.Address, (uint)buffer.Capacity));

        Memory<byte> slice = owner.Memory.Slice(100, 5000);
        Assert.True(RegisteredBuffer.TryGetSegment(slice, out var segment));
        Assert.Equal(buffer.Address + 100, segment.Address);
        Assert.Equal(5000u, segment.Length);
        Assert.Equal(region.LocalKey, segment.LocalKey);
        Assert.Equal(region.RemoteKey, segment.RemoteKey);
        Assert.Equal(new Interop.IbvSge(buffer.Address + 100, 5000, region.LocalKey), segment.ToSge());

        Assert.False(RegisteredBuffer.TryGetSegment(new byte[16], out _));
    }

    [Fact]
    public async Task Writes_through_Memory_land_in_the_registered_region()
    {
        using var pool = new RegisteredBufferPool(new FakeMemoryRegistrar(), Small);
        using var owner = await pool.RentAsync(4096);
        Random.Shared.NextBytes(owner.Memory.Span);
        var segment = ((RegisteredBuffer)owner).Segment;
        unsafe
        {
            var native = new ReadOnlySpan<byte>((void*)segment.Address, (int)segment.Length);
            Assert.True(native.SequenceEqual(owner.Memory.Span));
        }
        using var pin = owner.Memory.Pin();
        unsafe { Assert.Equal(segment.Address, (ulong)pin.Pointer); }
    }

    [Fact]
    public void Rented_buffers_never_overlap()
    {
        using var pool = new RegisteredBufferPool(new FakeMemoryRegistrar(), Small);
        var rented = new List<RegisteredBuffer>();
        while (pool.TryRent(1, out var b)) rented.Add(b);
        Assert.Equal(8, rented.Count);
        var ranges = rented.Select(b => (Start: b.Address, End: b.Address + (ulong)b.Capacity)).OrderBy(r => r.Start).ToList();
        for (var i = 1; i < ranges.Count; i++) Assert.True(ranges[i].Start >= ranges[i - 1].End);
        foreach (var b in rented) ((IDisposable)b).Dispose();
        Assert.Equal(0, pool.RentedCount);
    }

    [Fact]
    public async Task Falls_back_to_a_larger_class_when_the_fitting_one_is_exhausted()
    {
        using var pool = new RegisteredBufferPool(new FakeMemoryRegistrar(), Small);
        var small = new List<IMemoryOwner<byte>>();
        for (var i = 0; i < 4; i++) small.Add(await pool.RentAsync(512));
        using var fifth = await pool.RentAsync(512);
        Assert.Equal(64 * 1024, ((RegisteredBuffer)fifth).Capacity);
        Assert.Equal(512, fifth.Memory.Length);
        foreach (var o in small) o.Dispose();
    }

    [Fact]
    public async Task Waits_when_exhausted_and_resumes_when_a_buffer_comes_back()
    {
        using var pool = new RegisteredBufferPool(new FakeMemoryRegistrar(), Small);
        var big1 = await pool.RentAsync(1024 * 1024);
        var big2 = await pool.RentAsync(1024 * 1024);

        var waiting = pool.RentAsync(700_000);
        Assert.False(waiting.IsCompleted);
        Assert.Equal(1, pool.WaitingCount);

        big1.Dispose();
        using var owner = await waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(700_000, owner.Memory.Length);
        Assert.Equal(0, pool.WaitingCount);
        Assert.Equal(0, pool.GetAvailableCount(1024 * 1024));
        big2.Dispose();
    }

    [Fact]
    public async Task A_returned_large_buffer_serves_a_waiting_small_request()
    {
        using var pool = new RegisteredBufferPool(new FakeMemoryRegistrar(), Small);
        var all = new List<IMemoryOwner<byte>>();
        while (pool.TryRent(0, out var b)) all.Add(b);

        var smallWaiter = pool.RentAsync(100);
        Assert.False(smallWaiter.IsCompleted);
        var large = all.First(o => ((RegisteredBuffer)o).Capacity == 1024 * 1024);
        all.Remove(large);
        large.Dispose();
        var got = await smallWaiter.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(100, got.Memory.Length);
        Assert.Equal(1024 * 1024, ((RegisteredBuffer)got).Capacity);
        got.Dispose();
        foreach (var o in all) o.Dispose();
        Assert.Equal(0, pool.RentedCount);
    }

    [Fact]
    public async Task A_small_returned_buffer_does_not_serve_a_large_waiter()
    {
        using var pool = new RegisteredBufferPool(new FakeMemoryRegistrar(), Small);
        var all = new List<RegisteredBuffer>();
        while (pool.TryRent(0, out var b)) all.Add(b);

        var bigWaiter = pool.RentAsync(1024 * 1024);
        ((IDisposable)all.First(b => b.Capacity == 4096)).Dispose();
        await Task.Delay(50);
        Assert.False(bigWaiter.IsCompleted);
        Assert.Equal(1, pool.GetAvailableCount(4096));

        ((IDisposable)all.First(b => b.Capacity == 1024 * 1024)).Dispose();
        using var got = await bigWaiter.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(1024 * 1024, got.Memory.Length);
    }

    [Fact]
    public async Task Waiters_of_one_class_are_served_in_order()
    {
        using var pool = new RegisteredBufferPool(new FakeMemoryRegistrar(), new RegisteredBufferPoolOptions { SizeClasses = [new(4096, 1)] });
        var first = await pool.RentAsync(10);
        var a = pool.RentAsync(1).AsTask();
        var b = pool.RentAsync(2).AsTask();
        first.Dispose();
        var gotA = await a.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(b.IsCompleted);
        Assert.Equal(1, gotA.Memory.Length);
        gotA.Dispose();
        var gotB = await b.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(2, gotB.Memory.Length);
        gotB.Dispose();
    }

    [Fact]
    public async Task Cancelling_a_wait_removes_it_and_throws_OperationCanceled()
    {
        using var pool = new RegisteredBufferPool(new FakeMemoryRegistrar(), new RegisteredBufferPoolOptions { SizeClasses = [new(4096, 1)] });
        var held = await pool.RentAsync(1);
        using var cts = new CancellationTokenSource();
        var waiting = pool.RentAsync(1, cts.Token).AsTask();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(0, pool.WaitingCount);

        held.Dispose();
        Assert.Equal(1, pool.GetAvailableCount(4096)); // the cancelled waiter did not swallow the buffer
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await pool.RentAsync(1, cts.Token));
    }

    [Fact]
    public void Returning_a_buffer_twice_is_refused()
    {
        using var pool = new RegisteredBufferPool(new FakeMemoryRegistrar(), Small);
        Assert.True(pool.TryRent(1, out var b));
        ((IDisposable)b).Dispose();
        var e = Assert.Throws<InvalidOperationException>(() => ((IDisposable)b).Dispose());
        Assert.Contains("returned twice", e.Message);
        Assert.Equal(4, pool.GetAvailableCount(4096));
    }

    [Fact]
    public void Lengths_beyond_the_largest_class_are_rejected_clearly()
    {
        using var pool = new RegisteredBufferPool(new FakeMemoryRegistrar(), Small);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => pool.RentAsync(1024 * 1024 + 1));
        Assert.Contains("0 to 1048576 bytes", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.RentAsync(-1));
    }

    [Fact]
    public void Bad_options_name_the_problem()
    {
        var registrar = new FakeMemoryRegistrar();
        Assert.Contains("multiple of the 4096-byte alignment", Assert.Throws<ArgumentException>(() =>
            new RegisteredBufferPool(registrar, new RegisteredBufferPoolOptions { SizeClasses = [new(1000, 2)] })).Message);
        Assert.Contains("listed twice", Assert.Throws<ArgumentException>(() =>
            new RegisteredBufferPool(registrar, new RegisteredBufferPoolOptions { SizeClasses = [new(4096, 2), new(4096, 3)] })).Message);
        Assert.Contains("at least one size class", Assert.Throws<ArgumentException>(() =>
            new RegisteredBufferPool(registrar, new RegisteredBufferPoolOptions())).Message);
        Assert.Empty(registrar.Registrations);
    }

    [Fact]
    public void A_failed_registration_releases_what_was_registered_before()
    {
        var registrar = new FakeMemoryRegistrar { FailAfter = 2 };
        var e = Assert.Throws<RdmaException>(() => new RegisteredBufferPool(registrar, Small));
        Assert.Contains("ENOMEM", e.Message);
        Assert.Equal(2, registrar.Registrations.Count);
        Assert.All(registrar.Registrations, r => Assert.Equal(1, r.DisposeCount));
    }

    [Fact]
    public async Task Dispose_fails_waiters_and_deregisters_only_after_the_last_buffer_is_back()
    {
        var registrar = new FakeMemoryRegistrar();
        var pool = new RegisteredBufferPool(registrar, new RegisteredBufferPoolOptions { SizeClasses = [new(4096, 1)] });
        var held = await pool.RentAsync(8);
        var waiting = pool.RentAsync(8).AsTask();

        pool.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Throws<ObjectDisposedException>(() => pool.RentAsync(8));
        Assert.Equal(0, registrar.Registrations[0].DisposeCount); // still in use by 'held'

        held.Memory.Span.Fill(0xAB); // still valid memory
        held.Dispose();
        Assert.Equal(1, registrar.Registrations[0].DisposeCount);
    }

    [Fact]
    public async Task Concurrent_renters_share_a_tiny_pool_without_losing_or_duplicating_buffers()
    {
        using var pool = new RegisteredBufferPool(new FakeMemoryRegistrar(), new RegisteredBufferPoolOptions { SizeClasses = [new(4096, 3), new(8192, 2)] });
        var inUse = new HashSet<ulong>();
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 300; i++)
            {
                using var owner = await pool.RentAsync(1 + (i * 37 + w) % 8192);
                var address = ((RegisteredBuffer)owner).Address;
                lock (inUse) Assert.True(inUse.Add(address), "a buffer was handed to two renters at once");
                owner.Memory.Span[0] = (byte)w;
                await Task.Yield();
                Assert.Equal((byte)w, owner.Memory.Span[0]);
                lock (inUse) inUse.Remove(address);
            }
        })).ToArray();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, pool.RentedCount);
        Assert.Equal(3, pool.GetAvailableCount(4096));
        Assert.Equal(2, pool.GetAvailableCount(8192));
    }

    [Fact]
    public async Task Steady_state_renting_allocates_nothing()
    {
        using var pool = new RegisteredBufferPool(new FakeMemoryRegistrar(), new RegisteredBufferPoolOptions { SizeClasses = [new(4096, 1), new(1024 * 1024, 1)] });
        // Warm up both paths (the waiting path creates its pooled waiter once).
        for (var i = 0; i < 3; i++) RentReturnCycle(pool);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++) RentReturnCycle(pool);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        await Task.CompletedTask;
    }

    private static void RentReturnCycle(RegisteredBufferPool pool)
    {
        // Immediate path.
        var a = pool.RentAsync(100);
        var ownerA = a.Result;
        // Exhaust the 4 KiB class and the fallback 1 MiB class, then wait and get served by a return.
        var b = pool.RentAsync(100).Result;
        var waiting = pool.RentAsync(200);
        if (waiting.IsCompleted) throw new InvalidOperationException("expected to wait");
        ownerA.Dispose();
        var ownerC = waiting.Result; // completed synchronously by the return above
        if (ownerC.Memory.Length != 200) throw new InvalidOperationException("wrong length");
        ownerC.Dispose();
        b.Dispose();
    }
}
