using System.Globalization;
using IserBlockd.BlockDev.Kernel;
using IserBlockd.Daemon.Configuration.Document;
using IserBlockd.Iscsi.Security;
using IserBlockd.Transport.Selection;
using Serilog.Events;

namespace IserBlockd.Daemon.Configuration;

/// <summary>
/// Applies the rules and defaults of the configuration file to a structurally valid document and
/// loads the CHAP secrets. Every problem is collected with its path, so one run names them all (<see cref="ConfigChecks"/>).
/// A mapping's <c>nbd</c> object is checked by <see cref="NbdMappingValidator"/>, the <c>iser</c> section by
/// <see cref="IserBuffersValidator"/>.
/// </summary>
internal sealed class ConfigValidator
{
    internal const int MinDataLength = 512;
    internal const int MaxDataLength = 16_777_215; // 2^24 - 1, RFC 7143 section 13

    private readonly List<ConfigError> _errors;
    private readonly ConfigChecks _checks;
    private readonly NbdMappingValidator _nbd;

    private ConfigValidator(List<ConfigError> errors)
    {
        _errors = errors;
        _checks = new ConfigChecks(errors);
        _nbd = new NbdMappingValidator(_checks);
    }

    public static DaemonSettings? Validate(ConfigDocument document, List<ConfigError> errors)
    {
        var before = errors.Count;
        var settings = new ConfigValidator(errors).Build(document);
        return errors.Count == before ? settings : null;
    }

    private DaemonSettings Build(ConfigDocument doc)
    {
        string? initiatorName = null;
        if (doc.InitiatorName != null)
        {
            if (IscsiNameSyntax.IsValid(doc.InitiatorName)) initiatorName = doc.InitiatorName;
            else Error("initiatorName", $"expected {IscsiNameSyntax.Expected}, got \"{doc.InitiatorName}\"");
        }

        var replacement = Seconds(doc.ReplacementTimeout, "replacementTimeout", DaemonSettings.DefaultReplacementTimeout, min: 0);
        var nopInterval = Seconds(doc.NopInterval, "nopInterval", DaemonSettings.DefaultNopInterval, min: 0);
        var nopTimeout = Seconds(doc.NopTimeout, "nopTimeout", DaemonSettings.DefaultNopTimeout, min: 0.1);
        var loginTimeout = Seconds(doc.LoginTimeout, "loginTimeout", DaemonSettings.DefaultLoginTimeout, min: 1);
        var commandTimeout = Seconds(doc.CommandTimeout, "commandTimeout", DaemonSettings.DefaultCommandTimeout, min: 1);
        var kernelTimeout = Seconds(doc.KernelNbdTimeout, "kernelNbdTimeout", DaemonSettings.DefaultKernelNbdTimeout(replacement, commandTimeout), min: 1);
        if (doc.KernelNbdTimeout != null && kernelTimeout <= replacement)
            Error("kernelNbdTimeout", $"must be greater than replacementTimeout ({replacement.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s) so that the kernel never fails a request the daemon is still holding; leave it out to use replacementTimeout + {DaemonSettings.KernelTimeoutMargin.TotalSeconds} s");

        var kernelConnections = DaemonSettings.DefaultKernelNbdConnections;
        if (doc.KernelNbdConnections is { } connections)
        {
            if (connections is < 1 or > DaemonSettings.MaxKernelNbdConnections)
                Error("kernelNbdConnections", $"expected 1 to {DaemonSettings.MaxKernelNbdConnections}, got {connections}");
            else kernelConnections = connections;
        }
        var ublkQueueDepth = DaemonSettings.DefaultUblkQueueDepth;
        if (doc.UblkQueueDepth is { } depth)
        {
            if (depth is < 1 or > DaemonSettings.MaxUblkQueueDepth)
                Error("ublkQueueDepth", $"expected 1 to {DaemonSettings.MaxUblkQueueDepth}, got {depth}");
            else ublkQueueDepth = depth;
        }
        var lowDepthPoll = DaemonSettings.DefaultLowDepthPollMicroseconds;
        if (doc.LowDepthPollMicroseconds is { } poll)
        {
            if (DaemonSettings.LowDepthPollProblem(poll) is { } problem) Error("lowDepthPollMicroseconds", problem);
            else lowDepthPoll = poll;
        }
        var kernelMethod = KernelAttachMethod.Auto;
        if (doc.KernelNbdMethod != null && !KernelAttachMethodNames.TryParse(doc.KernelNbdMethod, out kernelMethod))
            Error("kernelNbdMethod", $"expected \"auto\", \"netlink\" or \"ioctl\", got \"{doc.KernelNbdMethod}\"");
        var iser = IserBuffersValidator.Check(doc.Iser, _checks);

        var reconnect = ReconnectPolicy.Default;
        if (doc.Reconnect is { } r)
        {
            var min = Seconds(r.MinDelay, "reconnect.minDelay", ReconnectPolicy.Default.MinDelay, min: 0.01);
            var max = Seconds(r.MaxDelay, "reconnect.maxDelay", r.MaxDelay == null && min > ReconnectPolicy.Default.MaxDelay ? min : ReconnectPolicy.Default.MaxDelay, min: 0.01);
            if (max < min) Error("reconnect.maxDelay", "must not be smaller than reconnect.minDelay");
            reconnect = new ReconnectPolicy(min, max);
        }

        var logging = Logging(doc.Logging);

        var controlSocket = DaemonSettings.DefaultControlSocket;
        if (doc.ControlSocket != null)
        {
            if (!ConfigChecks.IsAbsolutePath(doc.ControlSocket)) Error("controlSocket", $"expected an absolute path, got \"{doc.ControlSocket}\"");
            else if (System.Text.Encoding.UTF8.GetByteCount(doc.ControlSocket) > ConfigChecks.MaxUnixSocketPath) Error("controlSocket", $"longer than {ConfigChecks.MaxUnixSocketPath} bytes, the limit for a Unix socket path");
            else controlSocket = doc.ControlSocket;
        }

        HostPort? metrics = null;
        if (doc.Metrics?.Listen is { } metricsListen)
        {
            if (HostPort.TryParse(metricsListen, HostPort.MetricsPort, out var parsed, out var why)) metrics = parsed;
            else Error("metrics.listen", why);
        }

        var nodes = new List<NodeSettings>();
        var nodeNames = new HashSet<string>(StringComparer.Ordinal);
        var devices = new Dictionary<string, string>();
        var exports = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < (doc.Nodes?.Count ?? 0); i++)
        {
            var path = $"nodes[{i}]";
            if (doc.Nodes![i] is not { } nodeDoc)
            {
                Error(path, "expected an object, got null");
                continue;
            }
            if (Node(nodeDoc, path, devices, exports) is { } node)
            {
                if (!nodeNames.Add(node.Name)) Error(path + ".name", $"another node is already named \"{node.Name}\"");
                nodes.Add(node);
            }
        }

        return new DaemonSettings(initiatorName, replacement, nopInterval, nopTimeout, loginTimeout, kernelTimeout,
            reconnect, logging, controlSocket, nodes)
        {
            CommandTimeout = commandTimeout,
            KernelNbdConnections = kernelConnections,
            UblkQueueDepth = ublkQueueDepth,
            KernelNbdMethod = kernelMethod,
            ZeroCopyReads = doc.ZeroCopyReads ?? true,
            LowDepthPollMicroseconds = lowDepthPoll,
            IserBuffers = iser,
            MetricsListen = metrics,
        };
    }

    private LoggingSettings Logging(LoggingDocument? doc)
    {
        if (doc == null) return LoggingSettings.Default;
        var level = LogEventLevel.Information;
        if (doc.Level != null && !LoggingSettings.TryParseLevel(doc.Level, out level))
            Error("logging.level", $"expected {LoggingSettings.ExpectedLevel}, got \"{doc.Level}\"");

        var components = new Dictionary<string, LogEventLevel>(StringComparer.Ordinal);
        foreach (var (component, text) in doc.Components ?? [])
        {
            var path = $"logging.components[\"{component}\"]";
            if (component.Length == 0 || component.Any(char.IsWhiteSpace))
                Error(path, "a component is a namespace prefix such as \"IserBlockd.Iscsi\"");
            else if (text == null || !LoggingSettings.TryParseLevel(text, out var componentLevel))
                Error(path, $"expected {LoggingSettings.ExpectedLevel}, got {(text == null ? "null" : $"\"{text}\"")}");
            else
                components[component] = componentLevel;
        }

        string? file = null;
        if (doc.File != null)
        {
            if (ConfigChecks.IsAbsolutePath(doc.File)) file = doc.File;
            else Error("logging.file", $"expected an absolute path, got \"{doc.File}\"");
        }
        return new LoggingSettings(level, components, file);
    }

    private NodeSettings? Node(NodeDocument doc, string path, Dictionary<string, string> devices, Dictionary<string, string> exports)
    {
        var before = _errors.Count;
        var name = doc.Name ?? "";
        if (doc.Name == null) Error(path + ".name", "required: a short name for this node, used by iserblockctl and in export names");
        else if (!ConfigChecks.IsSimpleName(doc.Name)) Error(path + ".name", $"use letters, digits, '.', '_' and '-' only (1 to 64 characters), got \"{doc.Name}\"");

        var portals = new List<HostPort>();
        if (doc.Portals == null || doc.Portals.Count == 0)
            Error(path + ".portals", "required: one or more \"ADDRESS:PORT\" (IPv6 as \"[ADDRESS]:PORT\")");
        for (var i = 0; i < (doc.Portals?.Count ?? 0); i++)
        {
            var text = doc.Portals![i];
            if (text == null) Error($"{path}.portals[{i}]", "expected a string, got null");
            else if (HostPort.TryParse(text, HostPort.IscsiPort, out var portal, out var why)) portals.Add(portal);
            else Error($"{path}.portals[{i}]", why);
        }

        var target = doc.Target ?? "";
        if (doc.Target == null) Error(path + ".target", "required: the target's iSCSI name (iserblockctl discover PORTAL lists them)");
        else if (!IscsiNameSyntax.IsValid(doc.Target)) Error(path + ".target", $"expected {IscsiNameSyntax.Expected}, got \"{doc.Target}\"");

        var transport = IscsiTransportKind.Auto;
        if (doc.Transport != null && (doc.Transport is not ("tcp" or "iser" or "auto") || !IscsiTransportKindNames.TryParse(doc.Transport, out transport)))
            Error(path + ".transport", $"expected \"tcp\", \"iser\" or \"auto\", got \"{doc.Transport}\"");

        var chap = doc.Chap == null ? null : Chap(doc.Chap, path + ".chap");
        var operational = doc.Operational == null ? OperationalOverrides.None : Operational(doc.Operational, path + ".operational");

        var luns = new List<LunMapping>();
        LunTemplate? all = null;
        var (word, list) = (doc.Luns?.Word, doc.Luns?.List);
        if (word is not (null or "all")) Error(path + ".luns", $"expected \"all\" (every disk LUN of the target) or an array of LUN mappings, got \"{word}\"");
        else if (word != null)
            all = Template(doc.LunTemplate ?? new LunDocument { Device = "auto" }, path + ".lunTemplate", name, exports);
        else if (doc.LunTemplate != null)
            Error(path + ".lunTemplate", "only with \"luns\": \"all\"; a listed LUN says how it is exposed itself");
        if (word == null && (list == null || list.Count == 0))
            Error(path + ".luns", "required: \"all\", or one or more LUN mappings such as { \"lun\": 0, \"device\": \"auto\" }");
        var lunNumbers = new HashSet<int>();
        for (var i = 0; i < (list?.Count ?? 0); i++)
        {
            var lunPath = $"{path}.luns[{i}]";
            if (list![i] is not { } lunDoc) { Error(lunPath, "expected an object, got null"); continue; }
            if (lunDoc.Lun is { } number && !lunNumbers.Add(number))
                Error(lunPath + ".lun", $"LUN {number} is mapped twice in this node");
            if (Lun(lunDoc, lunPath, name, devices, exports) is { } lun)
                luns.Add(lun);
        }

        return _errors.Count == before
            ? new NodeSettings(name, portals, target, transport, chap, operational, luns, all)
            : null;
    }

    private ChapSettings? Chap(ChapDocument doc, string path)
    {
        var before = _errors.Count;
        if (doc.User == null) Error(path + ".user", "required with chap: the CHAP user name the initiator logs in as");
        else if (doc.User.Length == 0) Error(path + ".user", "must not be empty");
        if (doc.SecretFile == null) Error(path + ".secretFile", "required with chap: the file holding the initiator's CHAP secret (mode 0600)");
        if (doc.TargetUser != null && doc.TargetSecretFile == null)
            Error(path + ".targetSecretFile", "required with targetUser (mutual CHAP): the file holding the target's CHAP secret (mode 0600)");
        if (doc.TargetSecretFile != null && doc.TargetUser == null)
            Error(path + ".targetUser", "required with targetSecretFile (mutual CHAP): the user name the target answers as");
        if (doc.TargetUser is "") Error(path + ".targetUser", "must not be empty");

        ChapSecret? secret = null, targetSecret = null;
        if (doc.SecretFile != null) secret = Secret(doc.SecretFile, path + ".secretFile");
        if (doc.TargetSecretFile != null) targetSecret = Secret(doc.TargetSecretFile, path + ".targetSecretFile");
        if (secret != null && targetSecret != null && secret.Equals(targetSecret))
            Error(path + ".targetSecretFile", "the target's secret must differ from the initiator's (RFC 7143 section 12.1.3)");

        IReadOnlyList<ChapAlgorithm>? algorithms = null;
        if (doc.Algorithms != null)
        {
            if (ChapAlgorithmNames.TryParseList(doc.Algorithms.Select(a => a ?? "null"), out var parsed, out var why)) algorithms = parsed;
            else Error(path + ".algorithms", why);
        }

        return _errors.Count == before
            ? new ChapSettings(doc.User!, doc.SecretFile!, secret!, doc.TargetUser, doc.TargetSecretFile, targetSecret, algorithms)
            : null;
    }

    private ChapSecret? Secret(string file, string path)
    {
        if (!ConfigChecks.IsAbsolutePath(file))
        {
            Error(path, $"expected an absolute path, got \"{file}\"");
            return null;
        }
        var secret = SecretFile.TryRead(file, out var why);
        if (secret == null) Error(path, why);
        return secret;
    }

    private OperationalOverrides Operational(OperationalDocument doc, string path)
    {
        var overrides = new OperationalOverrides(
            Digest(doc.HeaderDigest, path + ".headerDigest"),
            Digest(doc.DataDigest, path + ".dataDigest"),
            Range(doc.MaxRecvDataSegmentLength, path + ".maxRecvDataSegmentLength", MinDataLength, MaxDataLength),
            Range(doc.MaxBurstLength, path + ".maxBurstLength", MinDataLength, MaxDataLength),
            Range(doc.FirstBurstLength, path + ".firstBurstLength", MinDataLength, MaxDataLength),
            doc.ImmediateData,
            doc.InitialR2T,
            Range(doc.MaxOutstandingR2T, path + ".maxOutstandingR2T", 1, 65535),
            Range(doc.QueueDepth, path + ".queueDepth", 1, 4096));
        if (overrides.FirstBurstLength is { } first && overrides.MaxBurstLength is { } max && first > max)
            Error(path + ".firstBurstLength", $"must not exceed maxBurstLength ({max})");
        return overrides;
    }

    private IReadOnlyList<string>? Digest(string? text, string path)
    {
        if (text == null) return null;
        var values = text.Split(',', StringSplitOptions.TrimEntries);
        foreach (var value in values)
        {
            if (value is not ("None" or "CRC32C"))
            {
                Error(path, $"expected \"None\", \"CRC32C\" or a preference list such as \"CRC32C,None\", got \"{text}\"");
                return null;
            }
        }
        if (values.Distinct().Count() != values.Length)
        {
            Error(path, $"\"{text}\" names a digest twice");
            return null;
        }
        return values;
    }

    /// <summary>Validates a digest preference (<c>None</c>, <c>CRC32C</c>, <c>CRC32C,None</c>) given elsewhere than in the file
    /// (the command line's <c>--header-digest</c>), with the file's rules.</summary>
    public static IReadOnlyList<string>? ValidateDigest(string text, string path, List<ConfigError> errors) =>
        new ConfigValidator(errors).Digest(text, path);

    /// <summary>Validates one LUN mapping on its own (a map request on the control socket); field paths
    /// are relative to the mapping. Conflicts with other mappings are the caller's to check.</summary>
    public static LunMapping? ValidateLun(LunDocument doc, string nodeName, List<ConfigError> errors)
    {
        var before = errors.Count;
        var lun = new ConfigValidator(errors).Lun(doc, "", nodeName, [], new Dictionary<string, string>(StringComparer.Ordinal));
        return errors.Count == before ? lun : null;
    }

    private LunMapping? Lun(LunDocument doc, string path, string nodeName, Dictionary<string, string> devices, Dictionary<string, string> exports)
    {
        var before = _errors.Count;
        var number = 0;
        if (doc.Lun == null) Error(path + ".lun", "required: the LUN number on the target");
        else if (doc.Lun is < 0 or > 16383) Error(path + ".lun", $"expected a LUN number from 0 to 16383, got {doc.Lun}");
        else number = doc.Lun.Value;

        DeviceSelection? device = null;
        if (doc.Device != null)
        {
            if (!DeviceSelection.TryParse(doc.Device, out var selection))
                Error(path + ".device", $"expected {DeviceSelection.Expected}, got \"{doc.Device}\"");
            else
            {
                device = selection;
                if (!selection.IsAuto && !devices.TryAdd(selection.ToString(), path))
                    Error(path + ".device", $"{selection} is already used by {devices[selection.ToString()]}");
            }
        }

        string? socket = null;
        HostPort? listen = null;
        var exportName = $"{nodeName}-{number}";
        var listener = NbdListenerSettings.Default;
        var maxConnections = BlockDev.Nbd.NbdExport.DefaultMaxConnections;
        if (doc.Nbd is { } nbd)
            (socket, listen, exportName, listener, maxConnections) = _nbd.Check(nbd, path, exportName, exports);

        if (doc.Device == null && doc.Nbd == null)
            Error(path, "maps nothing: give \"device\" (\"/dev/nbdN\", \"auto\", \"ublk\" or \"/dev/ublkbN\") and/or \"nbd\" ({ \"socket\": PATH } or { \"listen\": \"ADDRESS:PORT\" })");

        return _errors.Count == before
            ? new LunMapping(number, device, socket, listen, exportName, doc.ReadOnly ?? false) { Listener = listener, MaxConnections = maxConnections }
            : null;
    }

    /// <summary>The <c>lunTemplate</c> of a node with <c>"luns": "all"</c>: a LUN mapping without a number, whose device is
    /// "auto" or "ublk" and whose socket path or export name tells the LUNs apart with <c>{lun}</c>.</summary>
    private LunTemplate? Template(LunDocument doc, string path, string nodeName, Dictionary<string, string> exports)
    {
        var before = _errors.Count;
        const string P = LunTemplate.Placeholder;
        if (doc.Lun != null) Error(path + ".lun", "not in a template: every disk LUN of the target is mapped with it");
        if (doc.Device != null && DeviceSelection.TryParse(doc.Device, out var device) && !device.IsAuto) Error(path + ".device", $"\"{doc.Device}\" is one device, and every LUN needs its own: give \"auto\" or \"ublk\"");
        var (socket, exportName) = (doc.Nbd?.Socket, doc.Nbd?.ExportName);
        var perLunName = exportName == null || exportName.Contains(P, StringComparison.Ordinal);
        if (socket != null && !socket.Contains(P, StringComparison.Ordinal) && !perLunName) Error(path + ".nbd", $"every LUN would be the same export on {socket}: put {P} in \"socket\" or in \"exportName\"");
        if (doc.Nbd?.Listen is { } listen && !perLunName) Error(path + ".nbd.exportName", $"every LUN would be the same export on {listen}: put {P} in it (or leave it out: NODE-LUN)");
        // The rest is checked as a listed LUN's, with the longest LUN number for {lun} (a socket path's length counts).
        doc.Lun = 16383;
        if (doc.Nbd != null) doc.Nbd.Socket = socket?.Replace(P, "16383", StringComparison.Ordinal);
        var mapping = Lun(doc, path, nodeName, [], exports);
        return _errors.Count == before && mapping != null ? new LunTemplate(mapping with { Lun = -1 }, socket, exportName) : null;
    }

    private void Error(string path, string message) => _checks.Error(path, message);

    private TimeSpan Seconds(double? value, string path, TimeSpan defaultValue, double min) => _checks.Seconds(value, path, defaultValue, min);

    private int? Range(int? value, string path, int min, int max) => _checks.Range(value, path, min, max);
}
