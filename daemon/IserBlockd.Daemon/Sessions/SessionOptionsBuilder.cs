using IserBlockd.Daemon.Configuration;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Sessions;

namespace IserBlockd.Daemon.Sessions;

/// <summary>Turns a configured node into the iSCSI core's session options.</summary>
public static class SessionOptionsBuilder
{
    public static IscsiSessionOptions Build(NodeSettings node, string initiatorName, DaemonSettings settings)
    {
        var defaults = new OperationalOptions();
        var o = node.Operational;
        var operational = defaults with
        {
            HeaderDigest = o.HeaderDigest is { } h ? [.. h.Select(Digest)] : defaults.HeaderDigest,
            DataDigest = o.DataDigest is { } d ? [.. d.Select(Digest)] : defaults.DataDigest,
            MaxRecvDataSegmentLength = o.MaxRecvDataSegmentLength ?? defaults.MaxRecvDataSegmentLength,
            MaxBurstLength = o.MaxBurstLength ?? defaults.MaxBurstLength,
            FirstBurstLength = o.FirstBurstLength ?? Math.Min(defaults.FirstBurstLength, o.MaxBurstLength ?? defaults.MaxBurstLength),
            ImmediateData = o.ImmediateData ?? defaults.ImmediateData,
            InitialR2T = o.InitialR2T ?? defaults.InitialR2T,
            MaxOutstandingR2T = o.MaxOutstandingR2T ?? defaults.MaxOutstandingR2T,
        };
        return new IscsiSessionOptions
        {
            Portals = [.. node.Portals.Select(p => new IscsiPortal(p.Host, p.Port))],
            TargetName = node.Target,
            InitiatorName = initiatorName,
            Chap = node.Chap?.Initiator,
            TargetChap = node.Chap?.Target,
            ChapAlgorithms = node.Chap?.Offer ?? ChapAlgorithmNames.Default,
            Operational = operational,
            LoginTimeout = settings.LoginTimeout,
            CommandTimeout = settings.CommandTimeout,
            RetainCommandsOnConnectionLoss = true,
            MaxOutstandingCommands = o.QueueDepth ?? 1024,
            ReceiveBursts = ReceiveBurstToNbdReplies.Instance,
        };
    }

    private static DigestType Digest(string name) => name == "CRC32C" ? DigestType.Crc32C : DigestType.None;
}
