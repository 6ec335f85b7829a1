using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Daemon.Luns;

/// <summary>What MODE SENSE tells about a LUN's write cache (Caching mode page 08h) and write protection.</summary>
public readonly record struct CachingModePage(bool WriteCacheEnabled, bool WriteProtected, bool SupportsFua)
{
    /// <summary>When the LUN will not say: assume a volatile cache (flushes are then merely unneeded, never missing).</summary>
    public static CachingModePage Unknown => new(true, false, true);

    private const byte CachingPage = 0x08;

    /// <summary>MODE SENSE(10), falling back to MODE SENSE(6); <see cref="Unknown"/> if the LUN refuses both.</summary>
    public static async Task<CachingModePage> ReadAsync(ScsiLun lun, CancellationToken cancellationToken)
    {
        var buffer = new byte[256];
        try
        {
            var cdb = new byte[10];
            cdb[0] = 0x5a;        // MODE SENSE(10)
            cdb[1] = 0x08;        // DBD: no block descriptors
            cdb[2] = CachingPage; // current values
            cdb[7] = (byte)(buffer.Length >> 8);
            cdb[8] = (byte)buffer.Length;
            var result = await lun.ExecuteWithRetryAsync(cdb, ScsiDataDirection.Read, buffer, cancellationToken).ConfigureAwait(false);
            return Parse(buffer.AsSpan(0, result.BytesTransferred), headerLength: 8, deviceSpecific: 3, descriptorLengthAt: 6, twoByteDescriptorLength: true);
        }
        catch (ScsiCommandException e) when (e.Sense?.Key == SenseKey.IllegalRequest)
        {
        }
        try
        {
            var cdb = new byte[6];
            cdb[0] = 0x1a;        // MODE SENSE(6)
            cdb[1] = 0x08;
            cdb[2] = CachingPage;
            cdb[4] = 255;
            var result = await lun.ExecuteWithRetryAsync(cdb, ScsiDataDirection.Read, buffer.AsMemory(0, 255), cancellationToken).ConfigureAwait(false);
            return Parse(buffer.AsSpan(0, result.BytesTransferred), headerLength: 4, deviceSpecific: 2, descriptorLengthAt: 3, twoByteDescriptorLength: false);
        }
        catch (ScsiCommandException e) when (e.Sense?.Key == SenseKey.IllegalRequest)
        {
            return Unknown;
        }
    }

    internal static CachingModePage Parse(ReadOnlySpan<byte> data, int headerLength, int deviceSpecific, int descriptorLengthAt, bool twoByteDescriptorLength)
    {
        if (data.Length < headerLength) return Unknown;
        var flags = data[deviceSpecific];
        var writeProtected = (flags & 0x80) != 0;
        var fua = (flags & 0x10) != 0; // DPOFUA
        var descriptors = twoByteDescriptorLength ? data[descriptorLengthAt] << 8 | data[descriptorLengthAt + 1] : data[descriptorLengthAt];
        var page = data[Math.Min(data.Length, headerLength + descriptors)..];
        if (page.Length < 3 || (page[0] & 0x3f) != CachingPage)
            return Unknown with { WriteProtected = writeProtected };
        var wce = (page[2] & 0x04) != 0;
        return new CachingModePage(wce, writeProtected, fua);
    }
}
