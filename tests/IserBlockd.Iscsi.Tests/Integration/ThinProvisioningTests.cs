using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>UNMAP and WRITE SAME(16) with UNMAP on a thin-provisioned tgtd LUN: the blocks read back as zeros.</summary>
[Trait("Category", "RealPeer")]
public sealed class ThinProvisioningTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Thin_lun_advertises_and_honours_unmap_and_write_same()
    {
        await using var bed = await TgtdTestBed.StartAsync(output, size: 16 << 20, blockSize: 4096, thin: true);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        output.WriteLine($"LBPME={lun.Capacity.ProvisioningManagementEnabled} LBPU={lun.Provisioning?.Unmap} LBPWS={lun.Provisioning?.WriteSame16Unmap} limits={lun.BlockLimits}");
        Assert.True(lun.SupportsUnmap, "thin LUN does not advertise UNMAP");

        var data = new byte[64 * 4096];
        Random.Shared.NextBytes(data);
        await lun.WriteAsync(256, data);
        await lun.UnmapAsync(256 + 16, 16);
        var back = new byte[data.Length];
        await lun.ReadAsync(256, back);
        Assert.True(data.AsSpan(0, 16 * 4096).SequenceEqual(back.AsSpan(0, 16 * 4096)), "blocks before the unmapped range changed");
        Assert.True(back.AsSpan(16 * 4096, 16 * 4096).IndexOfAnyExcept((byte)0) < 0, "unmapped blocks do not read as zeros");
        Assert.True(data.AsSpan(32 * 4096).SequenceEqual(back.AsSpan(32 * 4096)), "blocks after the unmapped range changed");

        if (lun.SupportsWriteSameUnmap)
        {
            await lun.WriteSameUnmapAsync(256 + 40, 8);
            await lun.ReadAsync(256, back);
            Assert.True(back.AsSpan(40 * 4096, 8 * 4096).IndexOfAnyExcept((byte)0) < 0, "WRITE SAME UNMAP range does not read as zeros");
            Assert.True(data.AsSpan(48 * 4096).SequenceEqual(back.AsSpan(48 * 4096)));
        }
        else output.WriteLine("tgtd does not advertise WRITE SAME(16) UNMAP (LBPWS clear)");
    }

    [Fact]
    public async Task Thick_lun_refuses_unmap_locally()
    {
        await using var bed = await TgtdTestBed.StartAsync(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        Assert.False(lun.SupportsUnmap);
        await Assert.ThrowsAsync<NotSupportedException>(async () => await lun.UnmapAsync(0, 8));
    }
}
