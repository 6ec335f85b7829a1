namespace IserBlockd.Daemon.Control;

/// <summary>One LUN as the target reports it (<c>iserblockctl luns</c>), and whether the daemon maps it.</summary>
public sealed class LunDescription
{
    public int Lun { get; set; }
    /// <summary>"disk", "storage" (an array controller, as tgtd's LUN 0), "cd/dvd", "tape", ... (lsscsi's names).</summary>
    public string Type { get; set; } = "";
    /// <summary>The SCSI peripheral device type (0 is a disk).</summary>
    public int DeviceType { get; set; }
    /// <summary>Peripheral qualifier 0: a device is connected to this LUN.</summary>
    public bool Connected { get; set; }
    public string Vendor { get; set; } = "";
    public string Product { get; set; } = "";
    public string Revision { get; set; } = "";
    /// <summary>Disks only: the capacity in bytes (READ CAPACITY).</summary>
    public long? SizeBytes { get; set; }
    public int? BlockSize { get; set; }
    public bool Mapped { get; set; }
    /// <summary>"/dev/nbdN" when mapped as a kernel device.</summary>
    public string? Device { get; set; }
    public List<string>? Exports { get; set; }
    /// <summary>What the LUN did not answer.</summary>
    public string? Error { get; set; }
}
