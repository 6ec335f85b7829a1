using System.Text.Json;
using IserBlockd.Daemon.Configuration.Document;
using IserBlockd.Transport.Selection;

namespace IserBlockd.Daemon.Configuration;

/// <summary>The effective configuration (every default filled in) written back as the file format,
/// for <c>iserblockd check-config</c> and the debug log. It holds secret file paths, never secrets.</summary>
public static class ConfigDump
{
    public static string ToJson(DaemonSettings settings) =>
        JsonSerializer.Serialize(ToDocument(settings), ConfigJsonContext.Default.ConfigDocument);

    public static ConfigDocument ToDocument(DaemonSettings s) => new()
    {
        InitiatorName = s.InitiatorName,
        ReplacementTimeout = s.ReplacementTimeout.TotalSeconds,
        NopInterval = s.NopInterval.TotalSeconds,
        NopTimeout = s.NopTimeout.TotalSeconds,
        CommandTimeout = s.CommandTimeout.TotalSeconds,
        LoginTimeout = s.LoginTimeout.TotalSeconds,
        KernelNbdTimeout = s.KernelNbdTimeout.TotalSeconds,
        KernelNbdConnections = s.KernelNbdConnections,
        UblkQueueDepth = s.UblkQueueDepth,
        KernelNbdMethod = s.KernelNbdMethod.ToName(),
        ZeroCopyReads = s.ZeroCopyReads,
        LowDepthPollMicroseconds = s.LowDepthPollMicroseconds,
        Iser = new IserDocument
        {
            DataBuffers = [.. s.IserBuffers.DataBuffers.SizeClasses.Select(c => (BufferClassDocument?)new BufferClassDocument { Size = c.BufferSize, Count = c.Count })],
            BounceBuffers = [.. s.IserBuffers.BounceBuffers.SizeClasses.Select(c => (BufferClassDocument?)new BufferClassDocument { Size = c.BufferSize, Count = c.Count })],
            MemoryWindows = s.IserBuffers.MemoryWindows,
        },
        Reconnect = new ReconnectDocument { MinDelay = s.Reconnect.MinDelay.TotalSeconds, MaxDelay = s.Reconnect.MaxDelay.TotalSeconds },
        Logging = new LoggingDocument
        {
            Level = s.Logging.Level.ToString().ToLowerInvariant(),
            Components = s.Logging.Components.ToDictionary(c => c.Key, c => (string?)c.Value.ToString().ToLowerInvariant()),
            File = s.Logging.File,
        },
        ControlSocket = s.ControlSocket,
        Metrics = s.MetricsListen is { } metrics ? new MetricsDocument { Listen = metrics.ToString() } : null,
        Nodes = [.. s.Nodes.Select(n => (NodeDocument?)new NodeDocument
        {
            Name = n.Name,
            Portals = [.. n.Portals.Select(p => (string?)p.ToString())],
            Target = n.Target,
            Transport = n.Transport.ToName(),
            Chap = n.Chap is { } c
                ? new ChapDocument { User = c.User, SecretFile = c.SecretFile, TargetUser = c.TargetUser, TargetSecretFile = c.TargetSecretFile, Algorithms = [.. c.Offer.Select(ChapAlgorithmNames.Name)] }
                : null,
            Operational = n.Operational == OperationalOverrides.None ? null : new OperationalDocument
            {
                HeaderDigest = n.Operational.HeaderDigest is { } h ? string.Join(',', h) : null,
                DataDigest = n.Operational.DataDigest is { } d ? string.Join(',', d) : null,
                MaxRecvDataSegmentLength = n.Operational.MaxRecvDataSegmentLength,
                MaxBurstLength = n.Operational.MaxBurstLength,
                FirstBurstLength = n.Operational.FirstBurstLength,
                ImmediateData = n.Operational.ImmediateData,
                InitialR2T = n.Operational.InitialR2T,
                MaxOutstandingR2T = n.Operational.MaxOutstandingR2T,
                QueueDepth = n.Operational.QueueDepth,
            },
            Luns = n.AllLuns != null ? new LunsDocument { Word = "all" } : new LunsDocument { List = [.. n.Luns.Select(l => Document(l))] },
            LunTemplate = n.AllLuns is { } t ? Document(t.Prototype, t.Socket, t.ExportName) : null,
        })],
    };

    /// <param name="socket">The socket path to write instead of the mapping's (a template's, with {lun}).</param>
    /// <param name="exportName">The export name to write instead of the mapping's (a template's; null: the default).</param>
    private static LunDocument? Document(LunMapping l, string? socket = null, string? exportName = null) => new()
    {
        Lun = socket == null && exportName == null && l.Lun >= 0 ? l.Lun : null,
        Device = l.Device?.ToString(),
        Nbd = l.HasExport ? new NbdExportDocument
        {
            Socket = socket ?? l.Socket, Listen = l.Listen?.ToString(), ExportName = exportName ?? (l.Lun >= 0 ? l.ExportName : null), MaxConnections = l.MaxConnections,
            Tls = l.Listener.Tls, TlsCreds = l.Listener.TlsCreds, TlsVerifyPeer = l.Listener.TlsVerifyPeer,
            HandshakeTimeout = l.Listener.HandshakeTimeout.TotalSeconds, SendTimeout = l.Listener.SendTimeout.TotalSeconds,
        } : null,
        ReadOnly = l.ReadOnly,
    };
}
