namespace IserBlockd.Daemon.Control;

/// <summary>One node's session as <c>iserblockctl list</c> shows it.</summary>
public sealed class SessionInfo
{
    public string Node { get; set; } = "";
    public string Target { get; set; } = "";
    /// <summary>The portal of the current connection, or the first configured one when not connected.</summary>
    public string Portal { get; set; } = "";
    public string Transport { get; set; } = "";
    /// <summary>"logged-in", "logging-in", "reconnecting", "failed" or "logged-out".</summary>
    public string State { get; set; } = "";
    public string? Isid { get; set; }
    public int? Tsih { get; set; }
    /// <summary>Why the session is not logged in, when it is not.</summary>
    public string? LastError { get; set; }
    public int Reconnects { get; set; }
    public List<LunInfo> Luns { get; set; } = [];
}

/// <summary>One mapped LUN: where it is exposed and what went through it.</summary>
public sealed class LunInfo
{
    public int Lun { get; set; }
    /// <summary>"up", "paused" (session recovering, I/O held), "failed" (replacement timeout passed: I/O fails with EIO) or "starting".</summary>
    public string State { get; set; } = "";
    public string? Device { get; set; }
    /// <summary>NBD URIs of the exports (nbd+unix:///NAME?socket=PATH, nbd://ADDRESS:PORT/NAME).</summary>
    public List<string> Exports { get; set; } = [];
    public long SizeBytes { get; set; }
    public int BlockSize { get; set; }
    public bool ReadOnly { get; set; }
    public LunCounters Counters { get; set; } = new();
}

public sealed class LunCounters
{
    public long Reads { get; set; }
    public long Writes { get; set; }
    public long BytesRead { get; set; }
    public long BytesWritten { get; set; }
    public long Flushes { get; set; }
    public long Trims { get; set; }
    public long Errors { get; set; }
    public long InFlight { get; set; }
}
