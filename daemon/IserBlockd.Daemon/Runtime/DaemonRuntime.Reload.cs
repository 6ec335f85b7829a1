using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Control;
using IserBlockd.Daemon.Identity;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Runtime;

/// <summary>
/// Reload (SIGHUP, <c>iserblockctl reload</c>): the file is read and validated completely, as at start; a broken file
/// changes nothing. Otherwise only the difference is applied: new nodes log in, removed nodes log out (not while one
/// of their devices is in use), nodes whose session settings changed log in again, changed LUN mappings are redone;
/// every other session goes on untouched.
/// </summary>
public sealed partial class DaemonRuntime
{
    private readonly SemaphoreSlim _reloadGate = new(1, 1);

    public async Task<ControlSocketResponse> ReloadAsync(CancellationToken cancellationToken)
    {
        if (_configPath == null)
            return ControlSocketResponse.Failure(ControlErrorCodes.BadRequest, "this daemon was started without a configuration file");
        await _reloadGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            LogReloading(_configPath);
            DaemonSettings updated;
            string initiatorName;
            try
            {
                updated = ConfigLoader.Load(_configPath);
                initiatorName = updated.InitiatorName ?? (_settings.InitiatorName == null ? _initiatorName : new InitiatorIdentity().Resolve().Name);
            }
            catch (ConfigException e)
            {
                LogReloadRefused(e.Message);
                return ControlSocketResponse.Failure(ControlErrorCodes.ConfigInvalid, $"{e.Message}\nnothing was changed");
            }
            catch (InvalidOperationException e)
            {
                LogReloadRefused(e.Message);
                return ControlSocketResponse.Failure(ControlErrorCodes.ConfigInvalid, $"{_configPath}: initiatorName: not set, and {e.Message}; nothing was changed");
            }

            var difference = ConfigDifference.Between(_settings, updated);
            var done = new List<string>();
            var refused = new List<string>();
            foreach (var node in difference.Removed)
            {
                if (await RemoveNodeAsync(node.Name, refused, cancellationToken).ConfigureAwait(false))
                    done.Add($"{node.Name}: removed (logged out)");
            }
            foreach (var node in difference.SessionChanged)
            {
                if (await RemoveNodeAsync(node.Name, refused, cancellationToken).ConfigureAwait(false))
                {
                    AddNode(node, initiatorName, updated);
                    done.Add($"{node.Name}: session settings changed, logging in again");
                }
            }
            foreach (var node in difference.MappingsChanged)
            {
                if (Find(node.Name, out var runtime, out _))
                    done.AddRange(await runtime.Luns.ApplyAsync(node, refused, cancellationToken).ConfigureAwait(false));
            }
            foreach (var node in difference.Added)
            {
                AddNode(node, initiatorName, updated);
                done.Add($"{node.Name}: added, logging in");
            }
            // What was refused stays as it was; the rest of the file is in force.
            _settings = updated with { Nodes = [.. Nodes.Select(n => n.Node)] };
            _initiatorName = initiatorName;
            _status.Set(Summary());

            if (difference.NeedRestart.Count > 0)
                done.Add($"{string.Join(", ", difference.NeedRestart)} changed: takes effect at the next restart");
            var summary = done.Count == 0 && refused.Count == 0 ? "no changes" : string.Join("; ", done.Concat(refused));
            LogReloaded(summary);
            return refused.Count > 0
                ? ControlSocketResponse.Failure(ControlErrorCodes.Busy, $"reloaded {_configPath}, but {string.Join("; ", refused)}")
                : ControlSocketResponse.Success($"Reloaded {_configPath}: {summary}");
        }
        finally
        {
            _reloadGate.Release();
        }
    }

    private void AddNode(NodeSettings node, string initiatorName, DaemonSettings settings)
    {
        var runtime = new NodeSupervisor(node, initiatorName, settings, _shared, _loggerFactory);
        _nodes[node.Name] = runtime;
        _view = new NodeView(_nodes);
        runtime.Start();
    }

    /// <summary>Logs a node out and forgets it; false (with the reason in <paramref name="refused"/>) while a device of it is in use.</summary>
    private async Task<bool> RemoveNodeAsync(string name, List<string> refused, CancellationToken cancellationToken)
    {
        if (!Find(name, out var runtime, out _)) return true;
        var logout = await runtime.LogoutAsync(cancellationToken).ConfigureAwait(false);
        if (!logout.Ok && logout.Error?.Code != ControlErrorCodes.AlreadyDone)
        {
            refused.Add($"{name} kept: {logout.Error?.Message}");
            return false;
        }
        _nodes.Remove(name);
        _view = new NodeView(_nodes);
        await runtime.DisposeAsync().ConfigureAwait(false);
        return true;
    }

    [LoggerMessage(LogLevel.Information, "Reloading {Config}")]
    private partial void LogReloading(string config);

    [LoggerMessage(LogLevel.Error, "Reload refused, nothing changed: {Reason}")]
    private partial void LogReloadRefused(string reason);

    [LoggerMessage(LogLevel.Information, "Reloaded: {Summary}")]
    private partial void LogReloaded(string summary);
}
