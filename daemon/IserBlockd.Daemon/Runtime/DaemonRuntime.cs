using System.Collections.Frozen;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Control;
using IserBlockd.Daemon.Hosting;
using IserBlockd.Daemon.Sessions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Runtime;

/// <summary>
/// The running daemon: every configured node with its mappings. Start logs every node in and brings its
/// LUNs up, returning once each node has had its first attempt (so READY=1 follows the mappings); nodes
/// that could not log in keep retrying in the background. Stop flushes, detaches (or leaves in-use
/// devices for the next daemon) and logs out, within the host's shutdown timeout.
/// </summary>
public sealed partial class DaemonRuntime : IHostedService, IDaemonControl, IAsyncDisposable
{
    private DaemonSettings _settings;
    private readonly string? _configPath;
    private string _initiatorName;
    private readonly ServiceStatus _status;
    private readonly ILogger _logger;
    private readonly SharedResources _shared;
    private readonly ILoggerFactory _loggerFactory;
    /// <summary>The nodes by name. Only the constructor and a reload (one at a time, under <c>_reloadGate</c>) touch
    /// this dictionary; each change publishes a new immutable <see cref="NodeView"/>, which is all readers see.</summary>
    private readonly Dictionary<string, NodeSupervisor> _nodes = new(StringComparer.Ordinal);
    private volatile NodeView _view;
    private readonly DateTime _started = DateTime.UtcNow;

    public DaemonRuntime(DaemonSettings settings, string? configPath, string initiatorName, ServiceStatus status, ILoggerFactory loggerFactory)
    {
        _settings = settings;
        _configPath = configPath;
        _initiatorName = initiatorName;
        _status = status;
        _logger = loggerFactory.CreateLogger<DaemonRuntime>();
        _loggerFactory = loggerFactory;
        _shared = new SharedResources(loggerFactory, settings.IserBuffers, settings.ServerOptions());
        foreach (var node in settings.Nodes)
            _nodes.Add(node.Name, new NodeSupervisor(node, initiatorName, settings, _shared, loggerFactory));
        _view = new NodeView(_nodes);
    }

    /// <summary>The nodes now (a reload adds and removes them), in the dictionary's order.</summary>
    private NodeSupervisor[] Nodes => _view.InOrder;

    /// <summary>A snapshot of the nodes, never changed once published.</summary>
    private sealed class NodeView(Dictionary<string, NodeSupervisor> nodes)
    {
        public readonly NodeSupervisor[] InOrder = [.. nodes.Values];
        public readonly string[] Names = [.. nodes.Keys];
        public readonly FrozenDictionary<string, NodeSupervisor> ByName = nodes.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>How long start waits for the first login of every node: each portal's login timeout, plus LUN probing.</summary>
    private TimeSpan StartBudget =>
        _settings.LoginTimeout * Math.Max(1, _settings.Nodes.Select(n => n.Portals.Count).DefaultIfEmpty(1).Max()) + TimeSpan.FromSeconds(30);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var nodes = Nodes;
        LogStarting(DaemonVersion.Text, _initiatorName, nodes.Length, _configPath ?? "(none)");
        _status.Set($"logging in to {nodes.Length} node(s)");
        foreach (var node in nodes) node.Start();
        try
        {
            await Task.WhenAll(nodes.Select(n => n.FirstAttempt)).WaitAsync(StartBudget, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            LogSlowStart(StartBudget.TotalSeconds);
        }
        var summary = Summary();
        _status.Set(summary);
        LogStarted(summary);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _status.Set("stopping: flushing LUNs, detaching devices, logging out");
        await Task.WhenAll(Nodes.Select(n => n.StopAsync(cancellationToken))).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _shared.DisposeAsync().ConfigureAwait(false);
        LogStopped();
    }

    /// <summary>One line for STATUS= and the log.</summary>
    public string Summary()
    {
        var status = Status();
        var parts = new List<string> { $"{status.SessionsLoggedIn}/{status.Nodes} node(s) logged in" };
        if (status.SessionsRecovering > 0) parts.Add($"{status.SessionsRecovering} reconnecting");
        parts.Add($"{status.LunsMapped} LUN(s) mapped");
        if (status.LunsFailed > 0) parts.Add($"{status.LunsFailed} LUN(s) failed");
        return string.Join(", ", parts);
    }

    public List<SessionInfo> List() => [.. Nodes.Select(n => n.Describe())];

    public ControlSocketResponse Show(string? node)
    {
        if (node == null) return new ControlSocketResponse { Ok = true, Sessions = [.. Nodes.Select(n => n.Describe(detailed: true))] };
        return Find(node, out var runtime, out var missing)
            ? new ControlSocketResponse { Ok = true, Sessions = [runtime.Describe(detailed: true)] }
            : missing;
    }

    public StatusInfo Status()
    {
        var nodes = Nodes;
        return new()
        {
        Version = DaemonVersion.Text,
        Pid = Environment.ProcessId,
        UptimeSeconds = Math.Round((DateTime.UtcNow - _started).TotalSeconds, 1),
        InitiatorName = _initiatorName,
        ConfigFile = _configPath,
        Nodes = nodes.Length,
        SessionsLoggedIn = nodes.Count(n => n.State == NodeState.LoggedIn),
        SessionsRecovering = nodes.Count(n => n.State is NodeState.Recovering or NodeState.Failed),
        LunsMapped = nodes.Sum(n => n.Luns.MappedCount),
        LunsFailed = nodes.Sum(n => n.Luns.FailedCount),
        };
    }

    public Task<ControlSocketResponse> LoginAsync(string node, CancellationToken cancellationToken) =>
        Find(node, out var runtime, out var missing) ? Update(runtime.LoginAsync(cancellationToken)) : Task.FromResult(missing);

    public Task<ControlSocketResponse> LogoutAsync(string node, CancellationToken cancellationToken) =>
        Find(node, out var runtime, out var missing) ? Update(runtime.LogoutAsync(cancellationToken)) : Task.FromResult(missing);

    public Task<ControlSocketResponse> MapAsync(MapRequest request, CancellationToken cancellationToken)
    {
        if (!Find(request.Node, out var runtime, out var missing)) return Task.FromResult(missing);
        if (request.Mapping.Device is { IsAuto: false } device)
        {
            var path = device.ToString();
            foreach (var other in Nodes)
            {
                if (other.Describe().Luns.Find(l => l.Device == path) is { } lun)
                    return Task.FromResult(ControlSocketResponse.Failure(ControlErrorCodes.MapFailed, $"{path} is already used by {other.Node.Name} LUN {lun.Lun}"));
            }
        }
        return Update(runtime.Luns.MapAsync(request.Mapping, cancellationToken));
    }

    public Task<ControlSocketResponse> UnmapAsync(string node, int lun, CancellationToken cancellationToken) =>
        Find(node, out var runtime, out var missing) ? Update(runtime.Luns.UnmapAsync(lun, cancellationToken)) : Task.FromResult(missing);

    public Task<ControlSocketResponse> RescanAsync(string node, int? lun, CancellationToken cancellationToken) =>
        Find(node, out var runtime, out var missing) ? Update(runtime.Luns.Rescan.RescanAsync(lun, cancellationToken)) : Task.FromResult(missing);

    public Task<ControlSocketResponse> LunsAsync(string node, CancellationToken cancellationToken) =>
        Find(node, out var runtime, out var missing) ? runtime.Luns.Rescan.LunsAsync(cancellationToken) : Task.FromResult(missing);

    private async Task<ControlSocketResponse> Update(Task<ControlSocketResponse> command)
    {
        var response = await command.ConfigureAwait(false);
        _status.Set(Summary());
        return response;
    }

    private bool Find(string name, out NodeSupervisor runtime, out ControlSocketResponse missing)
    {
        var view = _view;
        if (view.ByName.TryGetValue(name, out runtime!))
        {
            missing = null!;
            return true;
        }
        missing = ControlSocketResponse.Failure(ControlErrorCodes.NotFound,
            $"no node named \"{name}\" in {_configPath ?? "the configuration"}" + (view.Names.Length > 0 ? $" (nodes: {string.Join(", ", view.Names)})" : ""));
        return false;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes) await node.DisposeAsync().ConfigureAwait(false);
        await _shared.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(LogLevel.Information, "iserblockd {Version} starting: initiator {Initiator}, {Nodes} node(s) from {Config}")]
    private partial void LogStarting(string version, string initiator, int nodes, string config);

    [LoggerMessage(LogLevel.Warning, "Not every node finished its first login within {Seconds} s; those keep trying in the background")]
    private partial void LogSlowStart(double seconds);

    [LoggerMessage(LogLevel.Information, "Ready: {Summary}")]
    private partial void LogStarted(string summary);

    [LoggerMessage(LogLevel.Information, "Stopped: LUNs flushed, sessions logged out")]
    private partial void LogStopped();
}
