using IserBlockd.BlockDev.Kernel.Ublk;

namespace IserBlockd.BlockDev.Kernel.Tests.Ublk;

public class UblkParamsBuilderTests
{
    [Fact]
    public void A_thin_lun_with_a_write_cache_gets_every_attribute_and_both_limits()
    {
        var geometry = new BlockGeometry(Size: 1L << 30, LogicalBlockSize: 512, PreferredBlockSize: 4096, MaxTransferBytes: 1 << 20);
        var features = BlockDeviceFeatures.Flush | BlockDeviceFeatures.Fua | BlockDeviceFeatures.Trim | BlockDeviceFeatures.WriteZeroes;
        var p = UblkParamsBuilder.Build(geometry, features, UblkParamsBuilder.MaxIoBytes(geometry, 4096));

        Assert.Equal(64u, p.Length);
        Assert.Equal(UblkParamTypes.Basic | UblkParamTypes.Discard, p.Types);
        Assert.Equal(UblkAttributes.VolatileCache | UblkAttributes.Fua, p.Basic.Attributes);
        Assert.Equal(9, p.Basic.LogicalBlockShift);
        Assert.Equal(12, p.Basic.PhysicalBlockShift);
        Assert.Equal((1u << 20) >> 9, p.Basic.MaxSectors);
        Assert.Equal((ulong)(1L << 30) >> 9, p.Basic.DeviceSectors);
        Assert.Equal(4096u, p.Discard.DiscardGranularity);
        Assert.Equal(UblkParamsBuilder.MaxDiscardSectors, p.Discard.MaxDiscardSectors);
        Assert.Equal(UblkParamsBuilder.MaxDiscardSectors, p.Discard.MaxWriteZeroesSectors);
        Assert.Equal((ushort)1, p.Discard.MaxDiscardSegments);   // the driver takes one segment only
    }

    [Fact]
    public void A_read_only_lun_without_a_cache_gets_neither_fua_nor_discard()
    {
        var geometry = new BlockGeometry(1L << 20, 4096, 4096, 256 << 10);
        var features = BlockDeviceFeatures.ReadOnly | BlockDeviceFeatures.Fua | BlockDeviceFeatures.Trim | BlockDeviceFeatures.Rotational;
        var p = UblkParamsBuilder.Build(geometry, features, UblkParamsBuilder.MaxIoBytes(geometry, 4096));

        Assert.Equal(UblkParamTypes.Basic, p.Types);
        Assert.Equal(UblkAttributes.ReadOnly | UblkAttributes.Rotational, p.Basic.Attributes);   // FUA only with a volatile cache
        Assert.Equal(12, p.Basic.LogicalBlockShift);
        Assert.Equal(12, p.Basic.PhysicalBlockShift);
    }

    [Fact]
    public void The_largest_request_is_page_rounded_and_within_one_user_copy_slot()
    {
        Assert.Equal(32 << 20, UblkParamsBuilder.MaxIoBytes(new BlockGeometry(1L << 40, 512, 512, 64 << 20), 4096));
        Assert.Equal(4096, UblkParamsBuilder.MaxIoBytes(new BlockGeometry(1L << 20, 512, 512, 1000), 4096));
        Assert.Equal(8192, UblkParamsBuilder.MaxIoBytes(new BlockGeometry(1L << 20, 512, 512, 9000), 4096));
    }
}
