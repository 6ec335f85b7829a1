using IserBlockd.Daemon.Control;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Sessions;

namespace IserBlockd.Daemon.Luns;

/// <summary>
/// The LUNs a target has, as it reports them: REPORT LUNS, then INQUIRY on each (type, vendor, product) and, for
/// disks, READ CAPACITY (size, block size). What a LUN does not answer is left out of its entry, never guessed.
/// </summary>
public static class LunSurvey
{
    /// <summary>SCSI peripheral device type 00h: a direct-access block device, the only kind that can be mapped.</summary>
    public const byte DiskType = 0x00;

    public static async Task<List<LunDescription>> DescribeAsync(IscsiSession session, CancellationToken cancellationToken)
    {
        var numbers = await session.ReportLunsAsync(cancellationToken).ConfigureAwait(false);
        var luns = new List<LunDescription>();
        foreach (var number in numbers.Order())
            luns.Add(await DescribeOneAsync(session, number, cancellationToken).ConfigureAwait(false));
        return luns;
    }

    /// <summary>The first disk LUN (peripheral device type 0, connected) of <paramref name="luns"/>, or null.</summary>
    public static LunDescription? FirstDisk(IEnumerable<LunDescription> luns) =>
        luns.FirstOrDefault(l => l.DeviceType == DiskType && l.Connected);

    private static async Task<LunDescription> DescribeOneAsync(IscsiSession session, ulong lun, CancellationToken cancellationToken)
    {
        var description = new LunDescription { Lun = (int)lun };
        var buffer = new byte[96];
        var cdb = new byte[6];
        CdbBuilder.Inquiry(cdb, (ushort)buffer.Length);
        try
        {
            var result = await ExecuteAsync(session, lun, cdb, buffer, cancellationToken).ConfigureAwait(false);
            var inquiry = InquiryData.Parse(buffer.AsSpan(0, result.BytesTransferred));
            description.DeviceType = inquiry.PeripheralDeviceType;
            description.Type = TypeName(inquiry.PeripheralDeviceType);
            description.Connected = inquiry.IsConnected;
            description.Vendor = inquiry.Vendor;
            description.Product = inquiry.Product;
            description.Revision = inquiry.Revision;
        }
        catch (IscsiException e) when (e is not IscsiConnectionLostException)
        {
            description.Error = e.Message;
            return description;
        }
        if (description.DeviceType != DiskType || !description.Connected) return description;
        try
        {
            var capacity = new byte[32];
            var rc16 = new byte[16];
            CdbBuilder.ReadCapacity16(rc16, (uint)capacity.Length);
            ReadCapacityData data;
            try
            {
                var result = await ExecuteAsync(session, lun, rc16, capacity, cancellationToken).ConfigureAwait(false);
                data = ReadCapacityData.Parse16(capacity.AsSpan(0, result.BytesTransferred));
            }
            catch (ScsiCommandException e) when (e.Sense?.Key == SenseKey.IllegalRequest)
            {
                var rc10 = new byte[10];
                CdbBuilder.ReadCapacity10(rc10);
                var result = await ExecuteAsync(session, lun, rc10, capacity.AsMemory(0, 8), cancellationToken).ConfigureAwait(false);
                data = ReadCapacityData.Parse10(capacity.AsSpan(0, result.BytesTransferred));
            }
            description.SizeBytes = (long)data.CapacityBytes;
            description.BlockSize = (int)data.LogicalBlockLength;
        }
        catch (IscsiException e) when (e is not IscsiConnectionLostException)
        {
            description.Error = e.Message;
        }
        return description;
    }

    /// <summary>One data-in command; UNIT ATTENTION (tgtd's first answer, a reported change) is retried, as sd does.</summary>
    private static async Task<ScsiCommandResult> ExecuteAsync(IscsiSession session, ulong lun, byte[] cdb, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            var result = await session.ExecuteAsync(lun, cdb, ScsiDataDirection.Read, buffer, timeout.Token).ConfigureAwait(false);
            if (result.IsGood) return result;
            if (result.IsUnitAttention && attempt < 5) continue;
            throw new ScsiCommandException(ScsiOpcode.Name(cdb), result.Status, result.Sense, result.Response);
        }
    }

    /// <summary>SPC's peripheral device types, as lsscsi names them.</summary>
    public static string TypeName(byte type) => type switch
    {
        0x00 => "disk",
        0x01 => "tape",
        0x02 => "printer",
        0x03 => "processor",
        0x04 => "worm",
        0x05 => "cd/dvd",
        0x07 => "optical",
        0x08 => "mediumx",
        0x0c => "storage",  // storage array controller (tgtd's LUN 0)
        0x0d => "enclosu",
        0x0e => "rbc",
        0x11 => "osd",
        0x14 => "zbc",
        0x1e => "wlun",
        _ => $"type-{type:x2}",
    };
}
