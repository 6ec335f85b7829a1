using IserBlockd.BlockDev;
using IserBlockd.BlockDev.Buffers;
using IserBlockd.Daemon.Luns;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Tests.Sessions;
using Xunit.Abstractions;

namespace IserBlockd.Daemon.Tests.Luns;

/// <summary>MODE PARAMETERS CHANGED (2A/01): the LUN adapter reads the Caching mode page again, and FLUSH stays offered
/// whatever the write cache was at mapping time, so a cache switched on later never leaves an acknowledged write volatile.</summary>
public sealed class ModeParametersChangedTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_write_cache_switched_on_after_mapping_is_read_again_and_flush_stays_offered()
    {
        var bed = new FakeTargetBed(output, t => t.WriteCacheEnabled = false);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        var buffers = new PinnedBlockBufferPool();
        var device = await ScsiLunBlockDevice.CreateAsync(lun, readOnly: false, buffers, CancellationToken.None);
        Assert.False(device.Caching.WriteCacheEnabled);
        Assert.True(device.Features.HasFlag(BlockDeviceFeatures.Flush));

        // the target switches its write cache on and says so with a unit attention on the next READ
        var once = 0;
        bed.Target.Intercept = (connection, pdu) =>
        {
            if (pdu.Opcode != IscsiOpcode.ScsiCommand || pdu.Header[32] is not (ScsiOpcode.Read10 or ScsiOpcode.Read16)
                || Interlocked.Exchange(ref once, 1) == 1) return false;
            connection.Advance(pdu.Header);
            bed.Target.WriteCacheEnabled = true;
            _ = connection.SendCheckConditionAsync(pdu.Itt, SenseKey.UnitAttention, 0x2a, 0x01);
            return true;
        };
        var modeSensesBefore = bed.CountReceived(p => p.Opcode == IscsiOpcode.ScsiCommand && p.Header[32] == 0x5a);
        Random.Shared.NextBytes(bed.Target.Disk.AsSpan(0, 4096));
        var back = new byte[4096];
        await device.ReadAsync(0, back, CancellationToken.None); // retried after the unit attention
        Assert.Equal(bed.Target.Disk.AsSpan(0, 4096).ToArray(), back);

        await Wait.Until(() => device.Caching.WriteCacheEnabled, "the caching page read again after 2A/01", TimeSpan.FromSeconds(30));
        Assert.True(bed.CountReceived(p => p.Opcode == IscsiOpcode.ScsiCommand && p.Header[32] == 0x5a) > modeSensesBefore);
        Assert.True(device.Features.HasFlag(BlockDeviceFeatures.Flush));
        await device.FlushAsync(CancellationToken.None);
    }
}
