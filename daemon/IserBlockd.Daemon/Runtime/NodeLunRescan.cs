using IserBlockd.Daemon.Control;
using IserBlockd.Daemon.Luns;
using IserBlockd.Daemon.Sessions;
using IserBlockd.Iscsi.Sessions;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Runtime;

/// <summary>
/// What the target reports (REPORT LUNS) against what a node has mapped. A rescan (<c>iserblockctl rescan NODE [LUN]</c>,
/// and REPORTED LUNS DATA HAS CHANGED from the target) reads the size of each mapped LUN again (a changed capacity
/// reaches new NBD connections and the kernel device), unmaps a mapped LUN the target no longer reports unless its
/// device is in use (then it is reported), and for a node with <c>"luns": "all"</c> maps every disk LUN not mapped yet
/// (the others are listed).
/// </summary>
public sealed partial class NodeLunRescan
{
    private readonly NodeSupervisor _node;
    private readonly NodeLunMappings _mappings;
    private readonly ILogger _logger;

    internal NodeLunRescan(NodeSupervisor node, NodeLunMappings mappings, ILoggerFactory loggerFactory)
    {
        _node = node;
        _mappings = mappings;
        _logger = loggerFactory.CreateLogger<NodeLunRescan>();
    }

    private string NodeName => _node.Node.Name;

    private ControlSocketResponse NotLoggedIn() =>
        ControlSocketResponse.Failure(ControlErrorCodes.NotConnected, $"{NodeName} is not logged in ({_node.State.ToDisplayString()})");

    public async Task<ControlSocketResponse> RescanAsync(int? only, CancellationToken cancellationToken)
    {
        if (_node.State != NodeState.LoggedIn || _node.Session is not { } session) return NotLoggedIn();
        return await _node.SerializedAsync(async ct =>
        {
            var reported = (await session.ReportLunsAsync(ct).ConfigureAwait(false)).Select(l => (int)l).ToHashSet();
            var mapped = _mappings.Mapped.Where(m => only == null || m.Mapping.Lun == only).ToList();
            if (only is { } asked && mapped.Count == 0)
                return ControlSocketResponse.Failure(ControlErrorCodes.NotFound, $"LUN {asked} of {NodeName} is not mapped");
            var done = new List<string>();
            var busy = new List<string>();
            foreach (var m in mapped)
            {
                var lun = m.Mapping.Lun;
                if (!reported.Contains(lun))
                {
                    if (m.IsDeviceInUse(out var why))
                    {
                        busy.Add($"LUN {lun} is gone from the target but kept: {why}");
                        LogRemovedInUse(NodeName, lun, why);
                        continue;
                    }
                    // A LUN mapped by "luns": "all" is forgotten with it; one named in the configuration comes back with it.
                    await _mappings.UnmapAsync(m, flush: false, stillWanted: _node.Node.AllLuns == null, ct).ConfigureAwait(false);
                    done.Add($"LUN {lun} is gone from the target: unmapped");
                    LogRemoved(NodeName, lun);
                    continue;
                }
                if (m.Device is not ScsiLunBlockDevice device) continue;
                var before = device.Geometry.Size;
                await device.Lun.RefreshCapacityAsync(ct).ConfigureAwait(false);
                var after = device.Geometry.Size;
                done.Add(after == before ? $"LUN {lun}: {after} bytes, unchanged" : $"LUN {lun}: resized from {before} to {after} bytes");
            }
            if (only == null)
            {
                if (_node.Node.AllLuns != null) done.AddRange(await MapNewDisksAsync(session, reported, ct).ConfigureAwait(false));
                int[] unmapped = [.. reported.Where(l => !_mappings.IsMapped(l)).Order()];
                if (unmapped.Length > 0)
                    done.Add($"not mapped: LUN {string.Join(", ", unmapped)} (iserblockctl luns {NodeName} describes them; iserblockctl map maps one)");
            }
            var message = $"Rescanned {NodeName}: {string.Join("; ", done.Concat(busy))}";
            return busy.Count > 0 ? ControlSocketResponse.Failure(ControlErrorCodes.Busy, message) : ControlSocketResponse.Success(message);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>After a login of a node with <c>"luns": "all"</c>: every connected disk LUN the target reports is wanted.</summary>
    internal async Task WantEveryDiskAsync(CancellationToken cancellationToken)
    {
        if (_node.Node.AllLuns is not { } template || _node.Session is not { } session) return;
        foreach (var lun in await LunSurvey.DescribeAsync(session, cancellationToken).ConfigureAwait(false))
        {
            if (IsMappableDisk(lun) && !_mappings.IsWanted(lun.Lun)) _mappings.Want(template.For(lun.Lun, NodeName));
        }
    }

    /// <summary>Maps, by the node's template, each disk LUN of <paramref name="reported"/> that is not mapped yet.</summary>
    private async Task<List<string>> MapNewDisksAsync(IscsiSession session, HashSet<int> reported, CancellationToken cancellationToken)
    {
        var done = new List<string>();
        if (_node.Node.AllLuns is not { } template) return done;
        var fresh = reported.Where(l => !_mappings.IsMapped(l)).Order().ToList();
        if (fresh.Count == 0) return done;
        foreach (var lun in await LunSurvey.DescribeAsync(session, cancellationToken).ConfigureAwait(false))
        {
            if (!fresh.Contains(lun.Lun) || !IsMappableDisk(lun)) continue;
            var mapping = template.For(lun.Lun, NodeName);
            _mappings.Want(mapping);
            if (await _mappings.TryMapAsync(mapping, cancellationToken).ConfigureAwait(false) is { } error)
            {
                done.Add($"LUN {lun.Lun} is new: cannot map: {error}");
                continue;
            }
            done.Add($"LUN {lun.Lun} is new: mapped");
            LogAdded(NodeName, lun.Lun);
        }
        return done;
    }

    private static bool IsMappableDisk(LunDescription lun) => lun.DeviceType == LunSurvey.DiskType && lun.Connected && lun.Error == null;

    /// <summary><c>iserblockctl luns NODE</c>: the LUNs the target reports now, through the node's session, and which are mapped.</summary>
    public async Task<ControlSocketResponse> LunsAsync(CancellationToken cancellationToken)
    {
        if (_node.State != NodeState.LoggedIn || _node.Session is not { } session) return NotLoggedIn();
        var luns = await LunSurvey.DescribeAsync(session, cancellationToken).ConfigureAwait(false);
        var mapped = _mappings.Mapped.ToDictionary(m => m.Mapping.Lun);
        foreach (var lun in luns)
        {
            if (!mapped.TryGetValue(lun.Lun, out var m)) continue;
            lun.Mapped = true;
            lun.Device = m.DevicePath;
            lun.Exports = [.. m.Exports];
        }
        return new ControlSocketResponse { Ok = true, Luns = luns };
    }

    /// <summary>The target said its LUN inventory changed (3F/0E): rescan in the background, as the kernel's scsi scan does.</summary>
    internal void OnReportedLunsChanged(object? sender, ScsiAsyncEventArgs e)
    {
        LogLunsChanged(NodeName);
        _ = Task.Run(async () =>
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                var result = await RescanAsync(null, timeout.Token).ConfigureAwait(false);
                LogRescanned(result.Message ?? result.Error?.Message ?? "");
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                LogRescanFailed(NodeName, ex.Message);
            }
        });
    }

    [LoggerMessage(LogLevel.Information, "{Node}: the target reports a change of its LUNs (REPORTED LUNS DATA HAS CHANGED); rescanning")]
    private partial void LogLunsChanged(string node);

    [LoggerMessage(LogLevel.Information, "{Summary}")]
    private partial void LogRescanned(string summary);

    [LoggerMessage(LogLevel.Warning, "{Node}: rescan failed: {Reason}")]
    private partial void LogRescanFailed(string node, string reason);

    [LoggerMessage(LogLevel.Information, "{Node} LUN {Lun} is new at the target; mapped (\"luns\": \"all\")")]
    private partial void LogAdded(string node, int lun);

    [LoggerMessage(LogLevel.Warning, "{Node} LUN {Lun} is gone from the target; unmapped")]
    private partial void LogRemoved(string node, int lun);

    [LoggerMessage(LogLevel.Error, "{Node} LUN {Lun} is gone from the target, but its device is in use ({Why}); kept until it is closed")]
    private partial void LogRemovedInUse(string node, int lun, string why);
}
