using System.Globalization;

namespace IserBlockd.Daemon.Mappings;

/// <summary>
/// The kernel NBD driver knows no maximum request size of its server (the netlink interface has no attribute for
/// it): it builds requests up to the queue's max_sectors_kb (1280 KiB by default on 6.1), and a request above what
/// the LUN adapter accepts would fail with EINVAL. So the queue limit is lowered to what the device takes, as
/// ib_iser does for its SCSI hosts (max_sectors 1024). Needs /sys writable (the unit allows /sys/devices/virtual/block).
/// </summary>
public static class KernelQueueLimits
{
    /// <summary>Lowers /sys/block/nbdN/queue/max_sectors_kb to <paramref name="maxTransferBytes"/> if it is above;
    /// returns the limit now in force, or throws <see cref="IOException"/>/<see cref="UnauthorizedAccessException"/>.</summary>
    public static int LimitRequestSize(uint index, int maxTransferBytes, string sysBlock = "/sys/block")
    {
        var path = $"{sysBlock}/nbd{index.ToString(CultureInfo.InvariantCulture)}/queue/max_sectors_kb";
        var wantedKb = Math.Max(4, maxTransferBytes / 1024);
        var currentKb = int.Parse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);
        if (currentKb <= wantedKb) return currentKb;
        File.WriteAllText(path, wantedKb.ToString(CultureInfo.InvariantCulture));
        return wantedKb;
    }
}
