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
    /// <summary><c>show</c> only: why this transport was chosen (auto: RDMA reachable or not, target's RDMAExtensions).</summary>
    public string? TransportReason { get; set; }
    /// <summary><c>show</c> only: every negotiated login key as agreed (RFC 7143 names), transport keys included.</summary>
    public List<NegotiatedKey>? Parameters { get; set; }
    /// <summary><c>show</c> only: the command window now.</summary>
    public CommandWindowInfo? CommandWindow { get; set; }
    /// <summary><c>show</c> only: commands queued or in flight, and what the command deadlines did.</summary>
    public SessionCounters? Commands { get; set; }
    public List<LunInfo> Luns { get; set; } = [];
}

public sealed class NegotiatedKey
{
    public string Key { get; set; } = "";
    public string Value { get; set; } = "";
}

public sealed class CommandWindowInfo
{
    public uint CmdSn { get; set; }
    public uint ExpCmdSn { get; set; }
    public uint MaxCmdSn { get; set; }
    /// <summary>Commands the target accepts beyond those sent (MaxCmdSN - CmdSN + 1; 0 when closed).</summary>
    public long Open { get; set; }
}

public sealed class SessionCounters
{
    public int Outstanding { get; set; }
    public long Sent { get; set; }
    public long Timeouts { get; set; }
    public long Aborts { get; set; }
    public long LunResets { get; set; }
    public long Reissued { get; set; }
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
    /// <summary><c>show</c> and <c>stats</c>: per kind (read, write, flush, trim, write_zeroes) operations, bytes and latency buckets.</summary>
    public List<LunKindStatistics>? Kinds { get; set; }
    /// <summary>Errors by errno name (EIO, ENOSPC, ...).</summary>
    public Dictionary<string, long>? ErrorsByErrno { get; set; }
    public string? Vendor { get; set; }
    public string? Product { get; set; }
}

/// <summary>One kind of request on one LUN, cumulative since the mapping came up.</summary>
public sealed class LunKindStatistics
{
    public string Kind { get; set; } = "";
    public long Operations { get; set; }
    public long Bytes { get; set; }
    public double LatencySeconds { get; set; }
    /// <summary>Requests by latency: bucket i counts [2^i, 2^(i+1)) µs.</summary>
    public long[] LatencyBucketsMicroseconds { get; set; } = [];
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
