using IserBlockd.Daemon.Control;
using IserBlockd.Daemon.Luns;
using IserBlockd.Daemon.Mappings;
using IserBlockd.Daemon.Sessions;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Runtime;

/// <summary>
/// Rescan (<c>iserblockctl rescan NODE [LUN]</c>, and REPORTED LUNS DATA HAS CHANGED from the target): the size of each
/// mapped LUN is read again (a changed capacity reaches new NBD connections and the kernel device), a mapped LUN the
/// target no longer reports is unmapped unless its device is in use (then it is reported), and LUNs the target has
/// that are not mapped are listed.
/// </summary>
public sealed partial class NodeRuntime
{
    public async Task<ControlSocketResponse> RescanAsync(int? only, CancellationToken cancellationToken)
    {
        if (Session.State != NodeState.LoggedIn || Session.Session is not { } session)
            return ControlSocketResponse.Failure(ControlErrorCodes.NotConnected, $"{Node.Name} is not logged in ({Session.State.ToDisplayString()})");
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var reported = (await session.ReportLunsAsync(cancellationToken).ConfigureAwait(false)).Select(l => (int)l).ToHashSet();
            List<MappedLun> mapped;
            lock (_mapped) mapped = [.. _mapped.Values.Where(m => only == null || m.Mapping.Lun == only)];
            if (only is { } asked && mapped.Count == 0)
                return ControlSocketResponse.Failure(ControlErrorCodes.NotFound, $"LUN {asked} of {Node.Name} is not mapped");
            var done = new List<string>();
            var busy = new List<string>();
            foreach (var m in mapped.OrderBy(m => m.Mapping.Lun))
            {
                var lun = m.Mapping.Lun;
                if (!reported.Contains(lun))
                {
                    if (m.IsDeviceInUse(out var why))
                    {
                        busy.Add($"LUN {lun} is gone from the target but kept: {why}");
                        LogRemovedInUse(Node.Name, lun, why);
                        continue;
                    }
                    await m.StopAsync(keepDeviceInUse: false, flush: false, cancellationToken).ConfigureAwait(false);
                    lock (_mapped) _mapped.Remove(lun);
                    done.Add($"LUN {lun} is gone from the target: unmapped");
                    LogRemoved(Node.Name, lun);
                    continue;
                }
                if (m.Device is not ScsiLunBlockDevice device) continue;
                var before = device.Geometry.Size;
                await device.Lun.RefreshCapacityAsync(cancellationToken).ConfigureAwait(false);
                var after = device.Geometry.Size;
                done.Add(after == before
                    ? $"LUN {lun}: {after} bytes, unchanged"
                    : $"LUN {lun}: resized from {before} to {after} bytes");
            }
            if (only == null)
            {
                int[] unmapped;
                lock (_mapped) unmapped = [.. reported.Where(l => !_mapped.ContainsKey(l)).Order()];
                if (unmapped.Length > 0)
                    done.Add($"not mapped: LUN {string.Join(", ", unmapped)} (iserblockctl luns {Node.Name} describes them; iserblockctl map maps one)");
            }
            var message = $"Rescanned {Node.Name}: {string.Join("; ", done.Concat(busy))}";
            return busy.Count > 0 ? ControlSocketResponse.Failure(ControlErrorCodes.Busy, message) : ControlSocketResponse.Success(message);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The target said its LUN inventory changed (3F/0E): rescan in the background, as the kernel's scsi scan does.</summary>
    private void OnReportedLunsChanged(object? sender, IserBlockd.Iscsi.Sessions.ScsiAsyncEventArgs e)
    {
        LogLunsChanged(Node.Name);
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
                LogRescanFailed(Node.Name, ex.Message);
            }
        });
    }

    [LoggerMessage(LogLevel.Information, "{Node}: the target reports a change of its LUNs (REPORTED LUNS DATA HAS CHANGED); rescanning")]
    private partial void LogLunsChanged(string node);

    [LoggerMessage(LogLevel.Information, "{Summary}")]
    private partial void LogRescanned(string summary);

    [LoggerMessage(LogLevel.Warning, "{Node}: rescan failed: {Reason}")]
    private partial void LogRescanFailed(string node, string reason);

    [LoggerMessage(LogLevel.Warning, "{Node} LUN {Lun} is gone from the target; unmapped")]
    private partial void LogRemoved(string node, int lun);

    [LoggerMessage(LogLevel.Error, "{Node} LUN {Lun} is gone from the target, but its device is in use ({Why}); kept until it is closed")]
    private partial void LogRemovedInUse(string node, int lun, string why);
}
