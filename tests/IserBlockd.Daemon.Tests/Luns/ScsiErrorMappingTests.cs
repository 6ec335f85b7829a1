using IserBlockd.BlockDev;
using IserBlockd.Daemon.Luns;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Daemon.Tests.Luns;

public sealed class ScsiErrorMappingTests
{
    private static ScsiCommandException Check(SenseKey key, byte asc, byte ascq)
    {
        // fixed-format sense: response code 70h, key, ASC at 12, ASCQ at 13
        var raw = new byte[18];
        raw[0] = 0x70;
        raw[2] = (byte)key;
        raw[7] = 10;
        raw[12] = asc;
        raw[13] = ascq;
        return new ScsiCommandException("WRITE(16)", ScsiStatus.CheckCondition, SenseData.TryParse(raw));
    }

    [Theory]
    [InlineData(SenseKey.DataProtect, 0x27, 0x00, BlockError.PermissionDenied)]  // write protected
    [InlineData(SenseKey.DataProtect, 0x27, 0x07, BlockError.NoSpace)]           // space allocation failed (thin pool full)
    [InlineData(SenseKey.IllegalRequest, 0x21, 0x00, BlockError.InvalidArgument)] // LBA out of range
    [InlineData(SenseKey.IllegalRequest, 0x20, 0x00, BlockError.NotSupported)]    // invalid command operation code
    [InlineData(SenseKey.MediumError, 0x11, 0x00, BlockError.IoError)]            // unrecovered read error
    [InlineData(SenseKey.HardwareError, 0x44, 0x00, BlockError.IoError)]
    public void Sense_becomes_the_errno_nbd_can_carry(SenseKey key, byte asc, byte ascq, BlockError expected)
    {
        var mapped = ScsiErrorMapping.ToBlockDeviceException(Check(key, asc, ascq), "WRITE");
        Assert.Equal(expected, mapped.Error);
        Assert.StartsWith("WRITE: ", mapped.Message);
    }

    [Fact]
    public void Session_failures_become_eio_or_eshutdown()
    {
        Assert.Equal(BlockError.IoError, ScsiErrorMapping.ToBlockDeviceException(new IscsiConnectionLostException("gone"), "READ").Error);
        Assert.Equal(BlockError.Shutdown, ScsiErrorMapping.ToBlockDeviceException(new IscsiSessionClosedException("logged out"), "READ").Error);
        Assert.Equal(BlockError.IoError, ScsiErrorMapping.ToBlockDeviceException(new InvalidOperationException("?"), "READ").Error);
        var busy = new ScsiCommandException("READ(16)", ScsiStatus.Busy, null);
        Assert.Equal(BlockError.IoError, ScsiErrorMapping.ToBlockDeviceException(busy, "READ").Error); // EBUSY is not an NBD error
    }
}
