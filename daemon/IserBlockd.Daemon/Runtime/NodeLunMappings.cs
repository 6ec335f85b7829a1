using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Control;
using IserBlockd.Daemon.Luns;
using IserBlockd.Daemon.Mappings;
using IserBlockd.Daemon.Sessions;
using IserBlockd.Iscsi;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Runtime;

/// <summary>
/// The LUN mappings of one node: those wanted (from the configuration, <c>"luns": "all"</c> and <c>iserblockctl map</c>)
/// and those up (kernel devices, NBD exports), with why a wanted one is not up. Its supervisor brings the wanted ones up
/// after each login and runs every change here one at a time (<see cref="NodeSupervisor.SerializedAsync{T}"/>).
/// </summary>
public sealed partial class NodeLunMappings
{
    private readonly NodeSupervisor _node;
    private readonly DaemonSettings _settings;
    private readonly SharedResources _shared;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly Lock _lock = new(); // guards the three tables
    private readonly List<LunMapping> _wanted;
    private readonly Dictionary<int, MappedLun> _mapped = [];
    private readonly Dictionary<int, string> _errors = [];

    internal NodeLunMappings(NodeSupervisor node, DaemonSettings settings, SharedResources shared, ILoggerFactory loggerFactory)
    {
        _node = node;
        _settings = settings;
        _shared = shared;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<NodeLunMappings>();
        _wanted = [.. node.Node.Luns];
        Rescan = new NodeLunRescan(node, this, loggerFactory);
    }

    private string NodeName => _node.Node.Name;

    /// <summary>What REPORT LUNS says against what is mapped: rescans, and (for <c>"luns": "all"</c>) the LUNs to add.</summary>
    public NodeLunRescan Rescan { get; }

    public int MappedCount { get { lock (_lock) return _mapped.Count; } }

    public int FailedCount { get { lock (_lock) return _errors.Count; } }

    public MappedLun[] Mapped { get { lock (_lock) return [.. _mapped.Values.OrderBy(m => m.Mapping.Lun)]; } }

    public bool IsMapped(int lun) { lock (_lock) return _mapped.ContainsKey(lun); }

    public bool IsWanted(int lun) { lock (_lock) return _wanted.Any(m => m.Lun == lun); }

    /// <summary>Why wanted LUNs are not up, one line each.</summary>
    public List<string> Errors() { lock (_lock) return [.. _errors.Select(e => $"LUN {e.Key}: {e.Value}")]; }

    /// <summary>Why a device of the node cannot be withdrawn now, or null when none is in use.</summary>
    public string? DeviceInUse()
    {
        foreach (var m in Mapped)
            if (m.IsDeviceInUse(out var why)) return why;
        return null;
    }

    /// <summary>After a login: maps every wanted LUN that is not up yet (and, for <c>"luns": "all"</c>, every disk LUN of
    /// the target); a LUN that fails is reported and the others go on.</summary>
    internal async Task MapWantedAsync(CancellationToken cancellationToken)
    {
        if (_node.Node.AllLuns != null)
        {
            try
            {
                await Rescan.WantEveryDiskAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogSurveyFailed(NodeName, e.Message);
            }
        }
        List<LunMapping> wanted;
        lock (_lock) wanted = [.. _wanted.Where(m => !_mapped.ContainsKey(m.Lun))];
        foreach (var mapping in wanted) await TryMapAsync(mapping, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Adds <paramref name="mapping"/> to the wanted ones (replacing one for the same LUN).</summary>
    internal void Want(LunMapping mapping)
    {
        lock (_lock)
        {
            _wanted.RemoveAll(m => m.Lun == mapping.Lun);
            _wanted.Add(mapping);
        }
    }

    /// <summary>Maps <paramref name="mapping"/>; a failure is logged and kept for <c>list</c>, and returned.</summary>
    internal async Task<string?> TryMapAsync(LunMapping mapping, CancellationToken cancellationToken)
    {
        try
        {
            await MapOneAsync(mapping, cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            lock (_lock) _errors[mapping.Lun] = e.Message;
            LogMapFailed(NodeName, mapping.Lun, e.Message);
            return e.Message;
        }
    }

    private async Task<MappedLun> MapOneAsync(LunMapping mapping, CancellationToken cancellationToken)
    {
        var device = await _node.OpenBlockDeviceAsync(mapping.Lun, mapping.ReadOnly, _shared.Buffers, cancellationToken).ConfigureAwait(false);
        var backend = KernelDeviceOptions.BackendIdentifierFor(_node.Node.Target, mapping.Lun);
        var kernel = new KernelDeviceOptions(_settings.KernelNbdTimeout, backend, _settings.KernelNbdConnections)
        {
            Method = _settings.KernelNbdMethod,
            UblkQueueDepth = _settings.UblkQueueDepth,
        };
        var mapped = await MappedLun.StartAsync(NodeName, mapping, device, _shared.Endpoints, kernel, _shared.ServerOptions, _loggerFactory, cancellationToken).ConfigureAwait(false);
        lock (_lock)
        {
            _mapped[mapping.Lun] = mapped;
            _errors.Remove(mapping.Lun);
        }
        return mapped;
    }

    /// <summary>Withdraws <paramref name="mapped"/> (its exports and device) and forgets it; <paramref name="stillWanted"/>
    /// false forgets that it was wanted too.</summary>
    internal async Task UnmapAsync(MappedLun mapped, bool flush, bool stillWanted, CancellationToken cancellationToken)
    {
        await mapped.StopAsync(keepDeviceInUse: false, flush, cancellationToken).ConfigureAwait(false);
        var lun = mapped.Mapping.Lun;
        lock (_lock)
        {
            _mapped.Remove(lun);
            _errors.Remove(lun);
            if (!stillWanted) _wanted.RemoveAll(m => m.Lun == lun);
        }
    }

    /// <summary>Stops every mapping (logout, daemon stop); <paramref name="keepDevicesInUse"/> leaves kernel devices in use
    /// configured for the next daemon.</summary>
    internal async Task StopAllAsync(bool keepDevicesInUse, CancellationToken cancellationToken)
    {
        var mapped = Mapped;
        await Task.WhenAll(mapped.Select(m => m.StopAsync(keepDevicesInUse, flush: true, cancellationToken))).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        lock (_lock)
        {
            _mapped.Clear();
            _errors.Clear();
        }
    }

    /// <summary><c>iserblockctl map</c>: exposes one more LUN (kept across reconnects, not written to the configuration file).</summary>
    public Task<ControlSocketResponse> MapAsync(LunMapping mapping, CancellationToken cancellationToken) => _node.SerializedAsync(async ct =>
    {
        if (IsMapped(mapping.Lun))
            return ControlSocketResponse.Failure(ControlErrorCodes.AlreadyDone, $"LUN {mapping.Lun} of {NodeName} is already mapped");
        if (_node.State is not (NodeState.LoggedIn or NodeState.Recovering))
            return ControlSocketResponse.Failure(ControlErrorCodes.MapFailed, $"{NodeName} is not logged in ({_node.State.ToDisplayString()}); iserblockctl login {NodeName}");
        MappedLun mapped;
        try
        {
            mapped = await MapOneAsync(mapping, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return ControlSocketResponse.Failure(IsMissingLun(e) ? ControlErrorCodes.NotFound : ControlErrorCodes.MapFailed,
                $"cannot map LUN {mapping.Lun} of {NodeName}: {e.Message}");
        }
        Want(mapping);
        var where = mapped.DevicePath is { } path ? [path, .. mapped.Exports] : mapped.Exports;
        return ControlSocketResponse.Success($"Mapped LUN {mapping.Lun} of {NodeName}: {string.Join(", ", where)}");
    }, cancellationToken);

    /// <summary><c>iserblockctl unmap</c>: withdraws a LUN's exports and device (refused while the device is in use) and flushes it.</summary>
    public Task<ControlSocketResponse> UnmapAsync(int lun, CancellationToken cancellationToken) => _node.SerializedAsync(async ct =>
    {
        MappedLun? mapped;
        lock (_lock) _mapped.TryGetValue(lun, out mapped);
        if (mapped == null)
        {
            bool wanted;
            lock (_lock) wanted = _wanted.RemoveAll(m => m.Lun == lun) > 0;
            return wanted
                ? ControlSocketResponse.Success($"LUN {lun} of {NodeName} will not be mapped")
                : ControlSocketResponse.Failure(ControlErrorCodes.NotFound, $"LUN {lun} of {NodeName} is not mapped");
        }
        if (mapped.IsDeviceInUse(out var why))
            return ControlSocketResponse.Failure(ControlErrorCodes.Busy, $"cannot unmap LUN {lun} of {NodeName}: {why}; unmount or close it first");
        await UnmapAsync(mapped, flush: true, stillWanted: false, ct).ConfigureAwait(false);
        return ControlSocketResponse.Success($"Unmapped LUN {lun} of {NodeName}");
    }, cancellationToken);

    /// <summary>Reload: the node's session settings are unchanged but its LUN mappings differ. Mappings gone or changed
    /// are withdrawn (not while their device is in use: reported in <paramref name="refused"/>), new ones come up.</summary>
    public Task<List<string>> ApplyAsync(NodeSettings updated, List<string> refused, CancellationToken cancellationToken) => _node.SerializedAsync(async ct =>
    {
        var done = new List<string>();
        var before = _node.Node;
        var inForce = new List<LunMapping>(updated.Luns);
        foreach (var old in before.Luns.Where(m => !updated.Luns.Contains(m)))
        {
            MappedLun? mapped;
            lock (_lock) _mapped.TryGetValue(old.Lun, out mapped);
            if (mapped != null && mapped.IsDeviceInUse(out var why))
            {
                refused.Add($"{NodeName} LUN {old.Lun} kept as it was: {why}");
                inForce.RemoveAll(m => m.Lun == old.Lun);
                inForce.Add(old);
                continue;
            }
            if (mapped != null) await UnmapAsync(mapped, flush: true, stillWanted: false, ct).ConfigureAwait(false);
            else lock (_lock) _wanted.RemoveAll(m => m.Lun == old.Lun);
            if (!updated.Luns.Any(m => m.Lun == old.Lun)) done.Add($"{NodeName} LUN {old.Lun}: unmapped");
        }
        foreach (var mapping in updated.Luns.Where(m => !before.Luns.Contains(m) && inForce.Contains(m)))
        {
            Want(mapping);
            if (_node.State is not (NodeState.LoggedIn or NodeState.Recovering))
            {
                done.Add($"{NodeName} LUN {mapping.Lun}: mapped once the node is logged in");
                continue;
            }
            if (await TryMapAsync(mapping, ct).ConfigureAwait(false) is { } error)
                refused.Add($"{NodeName} LUN {mapping.Lun}: cannot map: {error}");
            else
                done.Add($"{NodeName} LUN {mapping.Lun}: " + (before.Luns.Any(m => m.Lun == mapping.Lun) ? "mapping redone" : "mapped"));
        }
        _node.Node = updated with { Luns = [.. inForce.OrderBy(m => m.Lun)] };
        return done;
    }, cancellationToken);

    /// <summary>The wanted LUNs as <c>list</c> shows them: up (device, exports, size, counters) or why not.</summary>
    internal void AddTo(SessionInfo info, NodeState state, bool detailed)
    {
        lock (_lock)
        {
            foreach (var wanted in _wanted.OrderBy(m => m.Lun))
            {
                if (_mapped.TryGetValue(wanted.Lun, out var m))
                {
                    var device = (ScsiLunBlockDevice)m.Device;
                    var s = device.Statistics;
                    info.Luns.Add(new LunInfo
                    {
                        Lun = wanted.Lun,
                        State = m.DeviceLost ? "device disconnected outside iserblockd"
                            : state switch { NodeState.Recovering => "paused", NodeState.Failed => "failed", _ => "up" },
                        Device = m.DevicePath,
                        Exports = [.. m.Exports],
                        SizeBytes = device.Geometry.Size,
                        BlockSize = device.Geometry.LogicalBlockSize,
                        ReadOnly = device.Features.HasFlag(IserBlockd.BlockDev.BlockDeviceFeatures.ReadOnly),
                        Counters = new LunCounters
                        {
                            Reads = s.Reads, Writes = s.Writes, BytesRead = s.BytesRead, BytesWritten = s.BytesWritten,
                            Flushes = s.Flushes, Trims = s.Trims, Errors = s.Errors, InFlight = s.InFlight,
                        },
                    });
                    if (detailed) SessionDetails.AddTo(info.Luns[^1], device);
                }
                else
                {
                    info.Luns.Add(new LunInfo
                    {
                        Lun = wanted.Lun,
                        State = _errors.TryGetValue(wanted.Lun, out var error) ? "error: " + error
                            : state switch { NodeState.LoggedOut => "down", NodeState.LoggingIn when _node.LastError != null => "waiting for login", _ => "starting" },
                        Device = wanted.Device?.ToString(),
                        ReadOnly = wanted.ReadOnly,
                    });
                }
            }
        }
    }

    /// <summary>The target has no such LUN (ILLEGAL REQUEST 25/00, or nothing connected there): the same exit code as inquiry's.</summary>
    private static bool IsMissingLun(Exception e) =>
        e is IserBlockd.Iscsi.Scsi.ScsiCommandException { Sense: { Key: IserBlockd.Iscsi.Scsi.SenseKey.IllegalRequest, AdditionalSenseCode: 0x25 } }
        || (e is IscsiException && e.Message.Contains("is not connected", StringComparison.Ordinal));

    [LoggerMessage(LogLevel.Error, "{Node} LUN {Lun}: cannot map: {Reason}")]
    private partial void LogMapFailed(string node, int lun, string reason);

    [LoggerMessage(LogLevel.Error, "{Node}: cannot list the target's LUNs (REPORT LUNS) to map them all: {Reason}")]
    private partial void LogSurveyFailed(string node, string reason);
}
