namespace IserBlockd.Daemon.Control;

/// <summary>What <c>iserblockctl status</c> shows.</summary>
public sealed class StatusInfo
{
    public string Version { get; set; } = "";
    public int Pid { get; set; }
    public double UptimeSeconds { get; set; }
    public string InitiatorName { get; set; } = "";
    public string? ConfigFile { get; set; }
    public int Nodes { get; set; }
    public int SessionsLoggedIn { get; set; }
    public int SessionsRecovering { get; set; }
    public int LunsMapped { get; set; }
    public int LunsFailed { get; set; }
}
