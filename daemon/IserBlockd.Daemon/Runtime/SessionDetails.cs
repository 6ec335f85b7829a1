using System.Globalization;
using IserBlockd.Daemon.Control;
using IserBlockd.Daemon.Luns;
using IserBlockd.Daemon.Metrics;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Daemon.Sessions;
using IserBlockd.Transport.Selection;

namespace IserBlockd.Daemon.Runtime;

/// <summary>What <c>iserblockctl show</c> and <c>stats</c> add to a session's description: negotiated keys, command
/// window, command counters, and per-LUN figures by kind (from the same <see cref="LunStatistics"/> the metrics observe).</summary>
public static class SessionDetails
{
    /// <summary>A node's session and LUNs as <c>list</c> (and, <paramref name="detailed"/>, <c>show</c>) shows them.</summary>
    public static SessionInfo Describe(NodeSupervisor node, bool detailed)
    {
        var (state, session, choice, lastError, reconnects) = node.Snapshot();
        var settings = node.Node;
        var info = new SessionInfo
        {
            Node = settings.Name,
            Target = settings.Target,
            Portal = session?.Portal.Address ?? settings.Portals[0].ToString(),
            Transport = choice?.Name ?? settings.Transport.ToName(),
            State = state.ToDisplayString(),
            Isid = session?.Isid.ToString(),
            Tsih = session?.Tsih,
            LastError = lastError,
            Reconnects = reconnects,
        };
        if (detailed) AddTo(info, session, choice?.Reason);
        node.Luns.AddTo(info, state, detailed);
        return info;
    }

    public static void AddTo(SessionInfo info, IscsiSession? session, string? transportReason)
    {
        info.TransportReason = transportReason;
        if (session == null) return;
        info.Parameters = Parameters(session.Parameters);
        var (cmdSn, expCmdSn, maxCmdSn) = session.CommandWindow;
        info.CommandWindow = new CommandWindowInfo { CmdSn = cmdSn, ExpCmdSn = expCmdSn, MaxCmdSn = maxCmdSn, Open = Math.Max(0, (long)(int)(maxCmdSn - cmdSn) + 1) };
        var c = session.Counters;
        info.Commands = new SessionCounters
        {
            Outstanding = session.OutstandingCommands, Sent = c.CommandsSent, Timeouts = c.CommandTimeouts,
            Aborts = c.Aborts, LunResets = c.LunResets, Reissued = c.CommandsReissued,
        };
    }

    public static void AddTo(LunInfo info, ScsiLunBlockDevice device)
    {
        var s = device.Statistics;
        info.Kinds = [.. Enum.GetValues<LunIoKind>().Select(kind => new LunKindStatistics
        {
            Kind = kind.ToName(), Operations = s.Operations(kind), Bytes = s.Bytes(kind),
            LatencySeconds = s.LatencySeconds(kind), LatencyBucketsMicroseconds = s.LatencyBuckets(kind),
        })];
        info.ErrorsByErrno = s.ErrorsByErrno().ToDictionary(e => DaemonMetrics.ErrnoName(e.Errno), e => e.Count);
        info.Vendor = device.Lun.Inquiry.Vendor;
        info.Product = device.Lun.Inquiry.Product;
    }

    /// <summary>Every operational key as agreed, in RFC 7143's names and order, then the transport's own (iSER).</summary>
    public static List<NegotiatedKey> Parameters(NegotiatedParameters p)
    {
        var keys = new List<(string, string)>
        {
            ("HeaderDigest", Digest(p.HeaderDigest)),
            ("DataDigest", Digest(p.DataDigest)),
            ("MaxRecvDataSegmentLength", Number(p.MaxRecvDataSegmentLength)),
            ("TargetMaxRecvDataSegmentLength", Number(p.MaxSendDataSegmentLength)),
            ("MaxBurstLength", Number(p.MaxBurstLength)),
            ("FirstBurstLength", Number(p.FirstBurstLength)),
            ("InitialR2T", YesNo(p.InitialR2T)),
            ("ImmediateData", YesNo(p.ImmediateData)),
            ("MaxOutstandingR2T", Number(p.MaxOutstandingR2T)),
            ("DataPDUInOrder", YesNo(p.DataPduInOrder)),
            ("DataSequenceInOrder", YesNo(p.DataSequenceInOrder)),
            ("ErrorRecoveryLevel", Number(p.ErrorRecoveryLevel)),
            ("DefaultTime2Wait", Number(p.DefaultTime2Wait)),
            ("DefaultTime2Retain", Number(p.DefaultTime2Retain)),
            ("MaxConnections", Number(p.MaxConnections)),
            ("TaskReporting", p.TaskReporting),
            ("iSCSIProtocolLevel", Number(p.IscsiProtocolLevel)),
        };
        if (p.TargetAlias != null) keys.Add(("TargetAlias", p.TargetAlias));
        if (p.TargetPortalGroupTag is { } tag) keys.Add(("TargetPortalGroupTag", Number(tag)));
        keys.AddRange(p.TransportKeys.Select(k => (k.Key, k.Value)));
        return [.. keys.Select(k => new NegotiatedKey { Key = k.Item1, Value = k.Item2 })];
    }

    private static string Digest(DigestType digest) => digest == DigestType.None ? "None" : "CRC32C";

    private static string YesNo(bool value) => value ? "Yes" : "No";

    private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);
}
