using IserBlockd.BlockDev.Devices;

namespace IserBlockd.BlockDev.Tests.Devices;

public class MemoryBlockDeviceTests
{
    [Fact]
    public async Task Unwritten_space_reads_as_zeroes_and_costs_nothing()
    {
        var device = new MemoryBlockDevice(1L << 40); // 1 TiB, sparse
        var data = new byte[8192];
        Array.Fill(data, (byte)0xff);
        await device.ReadAsync(512L << 30, data, CancellationToken.None);
        ByteAssert.All(data, 0);
        Assert.Equal(0, device.AllocatedBytes);
    }

    [Fact]
    public async Task Writes_across_chunk_boundaries_read_back()
    {
        var device = new MemoryBlockDevice(16 << 20);
        var data = Enumerable.Range(0, 300_000).Select(i => (byte)(i % 251)).ToArray();
        await device.WriteAsync(65536 - 1024, data, fua: false, CancellationToken.None);
        var back = new byte[data.Length];
        await device.ReadAsync(65536 - 1024, back, CancellationToken.None);
        Assert.Equal(data, back);
        Assert.Equal(new MemoryBlockDeviceStatistics(1, 1, 0, data.Length, 0, 0, 0), device.Statistics);
    }

    [Fact]
    public async Task Trim_frees_whole_chunks_and_zeroes_partial_ones()
    {
        var device = new MemoryBlockDevice(1 << 20);
        await device.WriteAsync(0, Enumerable.Repeat((byte)1, 1 << 20).ToArray(), false, CancellationToken.None);
        await device.TrimAsync(4096, 200_000, CancellationToken.None);
        var back = new byte[1 << 20];
        device.Read(0, back);
        ByteAssert.All(back[..4096], 1);
        ByteAssert.All(back[4096..204096], 0);
        ByteAssert.All(back[204096..], 1);
        Assert.True(device.IsAllocated(0));
        Assert.False(device.IsAllocated(65536)); // fully inside the trimmed range
    }

    [Fact]
    public async Task Write_zeroes_without_unmap_keeps_storage()
    {
        var device = new MemoryBlockDevice(1 << 20);
        await device.WriteZeroesAsync(0, 1 << 20, mayUnmap: false, CancellationToken.None);
        Assert.True(device.IsAllocated(0) && device.IsAllocated(512 << 10));
        await device.WriteZeroesAsync(0, 1 << 20, mayUnmap: true, CancellationToken.None);
        Assert.Equal(0, device.AllocatedBytes);
    }

    [Fact]
    public async Task Durability_model_keeps_flushed_and_fua_writes_only()
    {
        var device = new MemoryBlockDevice(1 << 20, new MemoryBlockDeviceOptions { TrackDurability = true });
        await device.WriteAsync(0, new byte[] { 1, 1, 1, 1 }.Concat(new byte[508]).ToArray(), false, CancellationToken.None);
        await device.FlushAsync(CancellationToken.None);
        await device.WriteAsync(65536, Enumerable.Repeat((byte)2, 512).ToArray(), fua: true, CancellationToken.None);
        await device.WriteAsync(131072, Enumerable.Repeat((byte)3, 512).ToArray(), fua: false, CancellationToken.None);
        await device.TrimAsync(0, 65536, CancellationToken.None); // not flushed: the data comes back
        device.SimulatePowerLoss();
        var block = new byte[512];
        device.Read(0, block);
        Assert.Equal(1, block[0]);
        device.Read(65536, block);
        ByteAssert.All(block, 2);
        device.Read(131072, block);
        ByteAssert.All(block, 0);
    }

    [Fact]
    public async Task Read_only_devices_refuse_writes_with_eperm()
    {
        var device = new MemoryBlockDevice(1 << 20, new MemoryBlockDeviceOptions { Features = BlockDeviceFeatures.ReadOnly });
        var e = await Assert.ThrowsAsync<BlockDeviceException>(() => device.WriteAsync(0, new byte[512], false, CancellationToken.None).AsTask());
        Assert.Equal(BlockError.PermissionDenied, e.Error);
    }

    [Fact]
    public void Out_of_range_access_is_einval()
    {
        var device = new MemoryBlockDevice(1 << 20);
        var e = Assert.Throws<BlockDeviceException>(() => device.Read((1 << 20) - 256, new byte[512]));
        Assert.Equal(BlockError.InvalidArgument, e.Error);
    }

    [Fact]
    public async Task Concurrent_writers_to_fresh_chunks_lose_nothing()
    {
        var device = new MemoryBlockDevice(64 << 20);
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
        {
            for (var i = 0; i < 512; i++)
            {
                // all threads race to allocate the same chunks, each writing its own 512-byte slots
                var offset = (long)i * 65536 + t * 512;
                await device.WriteAsync(offset, Enumerable.Repeat((byte)(t + 1), 512).ToArray(), false, CancellationToken.None);
            }
        })));
        var block = new byte[512];
        for (var i = 0; i < 512; i++)
        for (var t = 0; t < 8; t++)
        {
            device.Read((long)i * 65536 + t * 512, block);
            ByteAssert.All(block, t + 1);
        }
    }
}
