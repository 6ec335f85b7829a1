namespace IserBlockd.Daemon.Configuration;

/// <summary>How each LUN of a node with <c>"luns": "all"</c> is exposed: the fields of a <see cref="LunMapping"/> with
/// <c>{lun}</c> standing for the LUN number in the socket path and the export name (a kernel device is "auto" or "ublk").</summary>
public sealed record LunTemplate(DeviceSelection? Device, string? Socket, HostPort? Listen, string? ExportName, bool ReadOnly)
{
    public const string Placeholder = "{lun}";

    /// <summary>The mapping of LUN <paramref name="lun"/>; the export name defaults to <c>NODE-LUN</c>, as for a listed LUN.</summary>
    public LunMapping For(int lun, string nodeName)
    {
        var number = lun.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new LunMapping(lun, Device, Socket?.Replace(Placeholder, number, StringComparison.Ordinal), Listen,
            ExportName?.Replace(Placeholder, number, StringComparison.Ordinal) ?? $"{nodeName}-{number}", ReadOnly);
    }
}
