using System.Globalization;

namespace IserBlockd.Daemon.Mappings;

/// <summary>
/// The kernel NBD driver knows no maximum request size of its server (the netlink interface has no attribute for
/// it) and starts every device at 128 KiB per request (queue/max_sectors_kb = 128). That halves sequential
/// throughput against a LUN that takes 1 MiB per command, and a limit above what the LUN adapter accepts would fail
/// requests with EINVAL. So the queue limit is set to what the device takes, within what the driver allows
/// (max_hw_sectors_kb) and at most the kernel's default for SCSI disks (1280 KiB), as sd and ib_iser set theirs.
/// Needs /sys writable (the unit allows /sys/devices/virtual/block).
/// </summary>
public static class KernelQueueLimits
{
    /// <summary>What the block layer gives SCSI disks by default (BLK_DEF_MAX_SECTORS): larger requests gain nothing.</summary>
    public const int DefaultMaxKb = 1280;

    /// <summary>Sets /sys/block/nbdN/queue/max_sectors_kb to <paramref name="maxTransferBytes"/> within the driver's and
    /// the default limits; returns the limit now in force, or throws <see cref="IOException"/>/<see cref="UnauthorizedAccessException"/>.</summary>
    public static int MatchRequestSize(uint index, int maxTransferBytes, string sysBlock = "/sys/block")
    {
        var queue = $"{sysBlock}/nbd{index.ToString(CultureInfo.InvariantCulture)}/queue";
        var wantedKb = Math.Clamp(maxTransferBytes / 1024, 4, DefaultMaxKb);
        if (File.Exists($"{queue}/max_hw_sectors_kb")) wantedKb = Math.Min(wantedKb, ReadKb($"{queue}/max_hw_sectors_kb"));
        var currentKb = ReadKb($"{queue}/max_sectors_kb");
        if (currentKb == wantedKb) return currentKb;
        File.WriteAllText($"{queue}/max_sectors_kb", wantedKb.ToString(CultureInfo.InvariantCulture));
        return wantedKb;
    }

    private static int ReadKb(string path) =>
        int.Parse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);
}
