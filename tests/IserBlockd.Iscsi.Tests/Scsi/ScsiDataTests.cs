using System.Buffers.Binary;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Iscsi.Tests.ScsiModel;

public sealed class ScsiDataTests
{
    [Fact]
    public void Fixed_sense()
    {
        var bytes = Convert.FromHexString("f00003000008000a00000000110000000000");
        var sense = SenseData.TryParse(bytes)!;
        Assert.False(sense.IsDescriptorFormat);
        Assert.Equal(SenseKey.MediumError, sense.Key);
        Assert.Equal(0x800UL, sense.Information);
        Assert.Equal("MEDIUM ERROR: unrecovered read error (ASC/ASCQ 11/00) at 2048", sense.ToString());
        var e = new ScsiCommandException("READ(16)", ScsiStatus.CheckCondition, sense);
        Assert.Equal("READ(16) failed: CHECK CONDITION, MEDIUM ERROR: unrecovered read error (ASC/ASCQ 11/00) at 2048", e.Message);
        Assert.Equal(Errno.EIO, e.Errno);
    }

    [Fact]
    public void Descriptor_sense_with_information()
    {
        // 72h, DATA PROTECT, 27/07, information descriptor (type 0, VALID) with LBA 0x1234.
        var bytes = Convert.FromHexString("72072707000000" + "0c" + "000a80000000000000001234");
        var sense = SenseData.TryParse(bytes)!;
        Assert.True(sense.IsDescriptorFormat);
        Assert.Equal(SenseKey.DataProtect, sense.Key);
        Assert.Equal(0x1234UL, sense.Information);
        Assert.Equal("space allocation failed write protect", sense.AdditionalSenseText);
        Assert.Equal(Errno.ENOSPC, new ScsiCommandException("WRITE(16)", ScsiStatus.CheckCondition, sense).Errno);
    }

    [Theory]
    [InlineData(SenseKey.IllegalRequest, 0x20, 0x00, 95, "invalid command operation code")]
    [InlineData(SenseKey.IllegalRequest, 0x21, 0x00, 22, "logical block address out of range")]
    [InlineData(SenseKey.DataProtect, 0x27, 0x00, 1, "write protected")]
    [InlineData(SenseKey.NotReady, 0x3a, 0x00, 123, "medium not present")]
    [InlineData(SenseKey.AbortedCommand, 0x47, 0x01, 5, "data phase CRC error detected")]
    [InlineData(SenseKey.HardwareError, 0x99, 0x99, 5, "vendor specific ASC/ASCQ 99/99")]
    public void Errno_and_text(SenseKey key, byte asc, byte ascq, int errno, string text)
    {
        var bytes = new byte[18];
        bytes[0] = 0x70; bytes[2] = (byte)key; bytes[7] = 10; bytes[12] = asc; bytes[13] = ascq;
        var sense = SenseData.TryParse(bytes)!;
        Assert.Equal(text, sense.AdditionalSenseText);
        Assert.Equal(errno, new ScsiCommandException("X", ScsiStatus.CheckCondition, sense).Errno);
    }

    [Fact]
    public void Status_without_sense()
    {
        Assert.Equal("WRITE(16) failed: RESERVATION CONFLICT", new ScsiCommandException("WRITE(16)", ScsiStatus.ReservationConflict, null).Message);
        Assert.Equal(Errno.EBUSY, new ScsiCommandException("X", ScsiStatus.TaskSetFull, null).Errno);
        Assert.Contains("target failure", new ScsiCommandException("X", ScsiStatus.Good, null, IscsiServiceResponse.TargetFailure).Message);
        Assert.Null(SenseData.TryParse([0x70]));
        Assert.Null(SenseData.TryParse([0x00, 0x00, 0x00]));
    }

    [Fact]
    public void Cdbs()
    {
        var cdb = new byte[16];
        Assert.Equal(16, CdbBuilder.Read16(cdb, 0x0102030405060708, 0x10, fua: false));
        Assert.Equal("88000102030405060708000000100000", Convert.ToHexStringLower(cdb));
        CdbBuilder.Write16(cdb, 5, 1, fua: true);
        Assert.Equal("8a080000000000000005000000010000", Convert.ToHexStringLower(cdb));
        Assert.Equal(10, CdbBuilder.Write10(cdb, 0x11223344, 0x55, fua: true));
        Assert.Equal("2a08112233440000550" + "0", Convert.ToHexStringLower(cdb[..10]));
        CdbBuilder.WriteSame16(cdb, 100, 8, unmap: true);
        Assert.Equal("93080000000000000064000000080000", Convert.ToHexStringLower(cdb));
        Assert.Equal(6, CdbBuilder.Inquiry(cdb, 255, VpdPage.BlockLimits));
        Assert.Equal("1201b000ff00", Convert.ToHexStringLower(cdb[..6]));
        CdbBuilder.ReadCapacity16(cdb, 32);
        Assert.Equal("9e100000000000000000000000200000", Convert.ToHexStringLower(cdb));
        Assert.Equal(12, CdbBuilder.ReportLuns(cdb, 4096));
        Assert.Equal("a00000000000000010000000", Convert.ToHexStringLower(cdb[..12]));
        Assert.Equal(10, CdbBuilder.Unmap(cdb, 24));
        Assert.Equal("42000000000000001800", Convert.ToHexStringLower(cdb[..10]));
        var list = new byte[24];
        UnmapParameterList.Write(list, [(0x10UL, 0x20u)]);
        Assert.Equal("001600100000000000000000000000100000002000000000", Convert.ToHexStringLower(list));
        CdbBuilder.SynchronizeCache16(cdb);
        Assert.Equal("SYNCHRONIZE CACHE(16)", ScsiOpcode.Name(cdb));
    }

    [Theory]
    [InlineData(0UL, 0x0000_0000_0000_0000UL)]
    [InlineData(1UL, 0x0001_0000_0000_0000UL)]
    [InlineData(255UL, 0x00ff_0000_0000_0000UL)]
    [InlineData(256UL, 0x4100_0000_0000_0000UL)]
    [InlineData(16383UL, 0x7fff_0000_0000_0000UL)]
    public void Lun_structures(ulong lun, ulong structure)
    {
        Assert.Equal(structure, LunAddress.Encode(lun));
        Assert.Equal(lun, LunAddress.Decode(structure));
    }

    [Fact]
    public void Report_luns_data()
    {
        var data = new byte[8 + 24];
        BinaryPrimitives.WriteUInt32BigEndian(data, 24);
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(8), LunAddress.Encode(0));
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(16), LunAddress.Encode(2));
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(24), LunAddress.Encode(300));
        Assert.Equal([0UL, 2UL, 300UL], LunAddress.ParseReportLuns(data));
        Assert.Throws<IscsiProtocolException>(() => LunAddress.ParseReportLuns(new byte[4]));
    }

    [Fact]
    public void Block_limits_and_provisioning_pages()
    {
        var b0 = new byte[64];
        b0[1] = 0xb0; b0[3] = 0x3c;
        BinaryPrimitives.WriteUInt32BigEndian(b0.AsSpan(8), 2048);       // maximum transfer length
        BinaryPrimitives.WriteUInt32BigEndian(b0.AsSpan(20), 65536);     // maximum unmap LBA count
        BinaryPrimitives.WriteUInt32BigEndian(b0.AsSpan(24), 1);         // maximum unmap descriptors
        BinaryPrimitives.WriteUInt32BigEndian(b0.AsSpan(28), 8);         // optimal unmap granularity
        BinaryPrimitives.WriteUInt32BigEndian(b0.AsSpan(32), 0x8000_0004); // UGAVALID, alignment 4
        BinaryPrimitives.WriteUInt64BigEndian(b0.AsSpan(36), 1 << 20);   // maximum write same length
        var limits = BlockLimits.Parse(b0);
        Assert.Equal((2048u, 65536u, 1u, 8u, (uint?)4u, 1UL << 20),
            (limits.MaximumTransferLength, limits.MaximumUnmapLbaCount, limits.MaximumUnmapBlockDescriptorCount, limits.OptimalUnmapGranularity, limits.UnmapGranularityAlignment, limits.MaximumWriteSameLength));

        var lbp = LogicalBlockProvisioning.Parse([0x00, 0xb2, 0x00, 0x04, 0x00, 0xc4, 0x02, 0x00]);
        Assert.True(lbp.Unmap && lbp.WriteSame16Unmap && lbp.ReadsZeroesAfterUnmap && !lbp.WriteSame10Unmap);
        Assert.Equal(2, lbp.ProvisioningType);
        Assert.Throws<IscsiProtocolException>(() => LogicalBlockProvisioning.Parse([0x00, 0xb0, 0x00, 0x04, 0, 0, 0, 0]));
    }
}
