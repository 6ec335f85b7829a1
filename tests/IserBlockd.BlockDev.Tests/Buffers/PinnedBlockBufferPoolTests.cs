using System.Runtime.InteropServices;
using IserBlockd.BlockDev.Buffers;

namespace IserBlockd.BlockDev.Tests.Buffers;

public class PinnedBlockBufferPoolTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(512)]
    [InlineData(4096)]
    [InlineData(4097)]
    [InlineData(1 << 20)]
    public async Task Rented_memory_has_exactly_the_length_asked_and_is_4k_aligned(int length)
    {
        var pool = new PinnedBlockBufferPool();
        using var buffer = await pool.RentAsync(length, CancellationToken.None);
        Assert.Equal(length, buffer.Memory.Length);
        Assert.True(MemoryMarshal.TryGetArray<byte>(buffer.Memory, out var segment));
        unsafe
        {
            fixed (byte* p = &segment.Array![segment.Offset])
                Assert.Equal(0u, (ulong)p % 4096);
        }
    }

    [Fact]
    public async Task Returned_buffers_and_their_owners_are_reused()
    {
        var pool = new PinnedBlockBufferPool();
        var first = await pool.RentAsync(4096, CancellationToken.None);
        first.Dispose();
        var second = await pool.RentAsync(3000, CancellationToken.None);
        Assert.Same(first, second);
        Assert.Equal(3000, second.Memory.Length);
        second.Dispose();
        second.Dispose(); // a second dispose is harmless
        Assert.Equal(0, pool.RentedBytes);
    }

    [Fact]
    public async Task A_disposed_buffer_cannot_be_used()
    {
        var pool = new PinnedBlockBufferPool();
        var buffer = await pool.RentAsync(4096, CancellationToken.None);
        buffer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => buffer.Memory);
    }

    [Fact]
    public async Task Renting_beyond_the_limit_waits_for_a_return()
    {
        var pool = new PinnedBlockBufferPool(new PinnedBlockBufferPoolOptions { MaxBufferSize = 1 << 20, MaxRentedBytes = 2 << 20 });
        var a = await pool.RentAsync(1 << 20, CancellationToken.None);
        var b = await pool.RentAsync(1 << 20, CancellationToken.None);
        var waiting = pool.RentAsync(4096, CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        a.Dispose();
        using var c = await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(4096, c.Memory.Length);
        b.Dispose();
    }

    [Fact]
    public async Task A_cancelled_wait_gives_nothing_away()
    {
        var pool = new PinnedBlockBufferPool(new PinnedBlockBufferPoolOptions { MaxBufferSize = 1 << 20, MaxRentedBytes = 1 << 20 });
        var held = await pool.RentAsync(1 << 20, CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var waiting = pool.RentAsync(1 << 20, cancel.Token).AsTask();
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        held.Dispose();
        Assert.Equal(0, pool.RentedBytes);
        using var again = await pool.RentAsync(1 << 20, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Oversized_requests_are_refused()
    {
        var pool = new PinnedBlockBufferPool(new PinnedBlockBufferPoolOptions { MaxBufferSize = 1 << 20 });
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => pool.RentAsync((1 << 20) + 1, CancellationToken.None).AsTask());
    }

    [Fact]
    public async Task Steady_state_rent_and_return_allocates_nothing()
    {
        var pool = new PinnedBlockBufferPool();
        for (var i = 0; i < 2000; i++) (await pool.RentAsync(4096 * (1 + i % 4), CancellationToken.None)).Dispose();
        // The quietest of three windows: the runtime (tiering up these methods) may allocate once.
        var allocated = long.MaxValue;
        for (var window = 0; window < 3; window++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 10_000; i++)
            {
                var rent = pool.RentAsync(4096 * (1 + i % 4), CancellationToken.None);
                Assert.True(rent.IsCompletedSuccessfully);
                (await rent).Dispose();
            }
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, allocated);
    }
}
