namespace IserBlockd.Daemon.Control;

/// <summary>One request on the control socket: a JSON object on one line.</summary>
public sealed class ControlSocketRequest
{
    /// <summary>"list", "status", "login", "logout", "map" or "unmap".</summary>
    public string? Command { get; set; }
    public string? Node { get; set; }
    public int? Lun { get; set; }
    /// <summary>For map: "/dev/nbdN", "auto", "ublk" or "/dev/ublkbN".</summary>
    public string? Device { get; set; }
    /// <summary>For map: serve the LUN on this Unix socket path.</summary>
    public string? Socket { get; set; }
    /// <summary>For map: serve the LUN on this TCP "ADDRESS:PORT".</summary>
    public string? Listen { get; set; }
    public string? ExportName { get; set; }
    public bool? ReadOnly { get; set; }
}
