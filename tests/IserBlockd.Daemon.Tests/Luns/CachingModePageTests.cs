using IserBlockd.Daemon.Luns;

namespace IserBlockd.Daemon.Tests.Luns;

public sealed class CachingModePageTests
{
    // MODE SENSE(10) header: length(2) medium(1) device-specific(1) reserved(2) block descriptor length(2)
    private static byte[] Sense10(byte deviceSpecific, byte cachingFlags, int descriptorLength = 0)
    {
        var data = new byte[8 + descriptorLength + 20];
        data[3] = deviceSpecific;
        data[6] = (byte)(descriptorLength >> 8);
        data[7] = (byte)descriptorLength;
        data[8 + descriptorLength] = 0x08;      // Caching page
        data[8 + descriptorLength + 1] = 0x12;  // page length 18
        data[8 + descriptorLength + 2] = cachingFlags;
        return data;
    }

    [Fact]
    public void Write_cache_enabled_with_dpofua()
    {
        var page = CachingModePage.Parse(Sense10(0x10, 0x04), 8, 3, 6, true);
        Assert.Equal(new CachingModePage(WriteCacheEnabled: true, WriteProtected: false, SupportsFua: true), page);
    }

    [Fact]
    public void Write_through_and_write_protected_after_a_block_descriptor()
    {
        var page = CachingModePage.Parse(Sense10(0x80, 0x00, descriptorLength: 8), 8, 3, 6, true);
        Assert.Equal(new CachingModePage(WriteCacheEnabled: false, WriteProtected: true, SupportsFua: false), page);
    }

    [Fact]
    public void Mode_sense_6_layout()
    {
        // header: length(1) medium(1) device-specific(1) block descriptor length(1)
        byte[] data = [23, 0, 0x10, 0, 0x08, 0x12, 0x04, .. new byte[17]];
        Assert.Equal(new CachingModePage(true, false, true), CachingModePage.Parse(data, 4, 2, 3, false));
    }

    [Fact]
    public void Another_page_or_a_short_answer_means_unknown_but_keeps_write_protect()
    {
        var other = Sense10(0x80, 0x04);
        other[8] = 0x0a; // Control page, not Caching
        Assert.Equal(CachingModePage.Unknown with { WriteProtected = true }, CachingModePage.Parse(other, 8, 3, 6, true));
        Assert.Equal(CachingModePage.Unknown, CachingModePage.Parse([0, 6], 8, 3, 6, true));
        Assert.True(CachingModePage.Unknown.WriteCacheEnabled); // when in doubt, flushes are sent
    }
}
