namespace IserBlockd.Daemon.Configuration;

/// <summary>How each LUN of a node with <c>"luns": "all"</c> is exposed: a LUN mapping (<see cref="Prototype"/>, LUN -1:
/// device "auto" or "ublk", NBD server settings, read-only) whose socket path and export name may hold <c>{lun}</c>,
/// standing for the LUN number.</summary>
public sealed record LunTemplate(LunMapping Prototype, string? Socket, string? ExportName)
{
    public const string Placeholder = "{lun}";

    /// <summary>The mapping of LUN <paramref name="lun"/>; the export name defaults to <c>NODE-LUN</c>, as for a listed LUN.</summary>
    public LunMapping For(int lun, string nodeName)
    {
        var number = lun.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Prototype with
        {
            Lun = lun,
            Socket = Socket?.Replace(Placeholder, number, StringComparison.Ordinal),
            ExportName = ExportName?.Replace(Placeholder, number, StringComparison.Ordinal) ?? $"{nodeName}-{number}",
        };
    }
}
