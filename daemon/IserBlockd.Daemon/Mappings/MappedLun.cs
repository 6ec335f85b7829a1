using IserBlockd.BlockDev;
using IserBlockd.BlockDev.Kernel;
using IserBlockd.BlockDev.Kernel.Ublk;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Luns;
using IserBlockd.Daemon.Metrics;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Mappings;

/// <summary>
/// One LUN exposed the ways its <see cref="LunMapping"/> asks: NBD exports on Unix sockets and TCP,
/// and/or a kernel /dev/nbdN or /dev/ublkbN. Stopping it withdraws the exports (started requests are answered),
/// detaches or releases the kernel device, then flushes the LUN so that every answered write is durable.
/// </summary>
public sealed partial class MappedLun
{
    private readonly NbdEndpointRegistry _endpoints;
    private readonly ILogger _logger;
    private readonly List<string> _exports = [];
    private NbdServer? _kernelServer;
    private KernelNbdDevice? _kernelDevice;
    private KernelUblkDevice? _ublkDevice;
    private int _stopped;

    private MappedLun(string node, LunMapping mapping, IBlockDevice device, NbdEndpointRegistry endpoints, ILogger logger)
    {
        Node = node;
        Mapping = mapping;
        Device = device;
        _endpoints = endpoints;
        _logger = logger;
    }

    public string Node { get; }
    public LunMapping Mapping { get; }
    public IBlockDevice Device { get; }

    /// <summary>"/dev/nbdN" or "/dev/ublkbN" when a kernel device is attached.</summary>
    public string? DevicePath => _kernelDevice?.DevicePath ?? _ublkDevice?.DevicePath;

    /// <summary>NBD URIs of the exports.</summary>
    public IReadOnlyList<string> Exports => _exports;

    public static async Task<MappedLun> StartAsync(string node, LunMapping mapping, IBlockDevice device, NbdEndpointRegistry endpoints,
        KernelDeviceOptions kernelOptions, NbdServerOptions serverOptions, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var lun = new MappedLun(node, mapping, device, endpoints, loggerFactory.CreateLogger<MappedLun>());
        if (device is ScsiLunBlockDevice scsi)
            DaemonMetrics.Register(node, mapping.Lun, scsi.Statistics, () => scsi.Geometry.Size);
        try
        {
            var export = new NbdExport(mapping.ExportName, device, $"{node} LUN {mapping.Lun}", mapping.ReadOnly) { MaxConnections = mapping.MaxConnections };
            if (mapping.Socket != null)
                lun._exports.Add(await endpoints.AddUnixAsync(mapping.Socket, export, mapping.Listener).ConfigureAwait(false));
            if (mapping.Listen is { } listen)
            {
                if (mapping.Listener.Tls == NbdListenerSettings.Off && !listen.IsLoopback) lun.LogListeningInTheClear(node, mapping.Lun, listen.ToString());
                lun._exports.Add(await endpoints.AddTcpAsync(listen, export, mapping.Listener).ConfigureAwait(false));
            }
            if (mapping.Device is { Ublk: true } ublkSelection)
            {
                var (ublk, recovered) = await UblkDevices.AttachAsync(ublkSelection, device, kernelOptions, cancellationToken).ConfigureAwait(false);
                lun._ublkDevice = ublk;
                if (recovered) lun.LogRecovered(node, mapping.Lun, ublk.DevicePath);
                else lun.LogAttached(node, mapping.Lun, ublk.DevicePath, "ublk");
                ublk.Failed += e => lun.LogUblkProblem(ublk.DevicePath, e.Message);
                _ = ublk.Ended.ContinueWith(static (_, state) => ((MappedLun)state!).OnKernelDeviceEnded(), lun,
                    CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
            else if (mapping.Device is { } selection)
            {
                lun._kernelServer = new NbdServer(serverOptions, loggerFactory);
                var server = lun._kernelServer;
                var (kernel, reattached) = await KernelDevices.AttachAsync(selection, device, kernelOptions,
                    (socket, ct) => server.ServeTransmissionAsync(socket, export, ct), cancellationToken).ConfigureAwait(false);
                lun._kernelDevice = kernel;
                if (reattached) lun.LogReattached(node, mapping.Lun, kernel.DevicePath);
                else lun.LogAttached(node, mapping.Lun, kernel.DevicePath, kernel.Method.ToName());
                lun.MatchKernelRequestSize(kernel);
                if (device is ScsiLunBlockDevice resizable)
                    resizable.Lun.CapacityChanged += (_, e) => _ = lun.ResizeKernelDeviceAsync(kernel, (long)e.SizeBytes);
                kernel.ConnectionsReplaced += count => lun.LogConnectionsReplaced(kernel.DevicePath, count);
                kernel.ReplacementFailed += e => lun.LogReplacementFailed(kernel.DevicePath, e.Message);
                _ = kernel.Ended.ContinueWith(static (_, state) => ((MappedLun)state!).OnKernelDeviceEnded(), lun,
                    CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
            foreach (var uri in lun._exports)
                lun.LogExported(node, mapping.Lun, uri);
            return lun;
        }
        catch
        {
            await lun.StopAsync(keepDeviceInUse: false, flush: false).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The kernel device was disconnected by someone else (nbd-client -d, another NBD_CMD_DISCONNECT):
    /// the LUN stays logged in, and <c>iserblockctl unmap</c> then <c>map</c> attaches it again.</summary>
    public bool DeviceLost => Volatile.Read(ref _deviceLost) != 0;

    private int _deviceLost;

    private void OnKernelDeviceEnded()
    {
        if (Volatile.Read(ref _stopped) != 0 || DevicePath is not { } path) return;
        Volatile.Write(ref _deviceLost, 1);
        LogDeviceLost(Node, Mapping.Lun, path);
    }

    private void MatchKernelRequestSize(KernelNbdDevice kernel)
    {
        try
        {
            var kb = KernelQueueLimits.MatchRequestSize(kernel.Index, Device.Geometry.MaxTransferBytes);
            LogQueueLimit(kernel.DevicePath, kb);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            LogQueueLimitFailed(kernel.DevicePath, Device.Geometry.MaxTransferBytes / 1024, e.Message);
        }
    }

    /// <summary>The LUN's capacity changed: the kernel device follows (NBD exports give the new size to new connections
    /// by themselves), so that a mounted filesystem can be grown online (resize2fs).</summary>
    private async Task ResizeKernelDeviceAsync(KernelNbdDevice kernel, long sizeBytes)
    {
        if (Volatile.Read(ref _stopped) != 0) return;
        try
        {
            await kernel.ResizeAsync(sizeBytes).ConfigureAwait(false);
            LogKernelResized(kernel.DevicePath, sizeBytes);
        }
        catch (Exception e) when (e is KernelNbdException or InvalidOperationException or NotSupportedException or IOException)
        {
            LogKernelResizeFailed(kernel.DevicePath, sizeBytes, e.Message);
        }
    }

    /// <summary>Whether the kernel device is mounted or open by another process.</summary>
    public bool IsDeviceInUse(out string why)
    {
        why = "";
        return DevicePath is { } path && KernelDeviceUse.IsInUse(path, out why);
    }

    /// <summary>Stops exposing the LUN. With <paramref name="keepDeviceInUse"/> a kernel device that is
    /// mounted or open is left configured for the next daemon to re-attach instead of detached.</summary>
    public async Task StopAsync(bool keepDeviceInUse, bool flush = true, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        if (Device is ScsiLunBlockDevice scsi) DaemonMetrics.Unregister(scsi.Statistics);
        await _endpoints.RemoveAsync(Mapping.Socket, Mapping.Listen, Mapping.ExportName).ConfigureAwait(false);

        if (_kernelDevice is { } kernel)
        {
            if (keepDeviceInUse && kernel.Method == KernelAttachMethod.Netlink && KernelDeviceUse.IsInUse(kernel.Index, out var why))
            {
                LogReleased(kernel.DevicePath, why);
                await kernel.ReleaseAsync().ConfigureAwait(false);
            }
            else
            {
                await kernel.DetachAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false);
                LogDetached(kernel.DevicePath);
            }
        }
        if (_ublkDevice is { } ublk)
        {
            if (keepDeviceInUse && ublk.Features.HasFlag(UblkFeatures.UserRecovery) && KernelDeviceUse.IsInUse(ublk.DevicePath, out var why))
            {
                LogReleased(ublk.DevicePath, why);
                await ublk.ReleaseAsync().ConfigureAwait(false);
            }
            else
            {
                await ublk.DetachAsync().ConfigureAwait(false);
                LogDetached(ublk.DevicePath);
            }
        }
        if (_kernelServer != null)
            await _kernelServer.DisposeAsync().ConfigureAwait(false);

        if (flush && !Mapping.ReadOnly && Device.Features.HasFlag(BlockDeviceFeatures.Flush))
        {
            try
            {
                await Device.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                LogFlushFailed(Node, Mapping.Lun, e.Message);
            }
        }
    }

    [LoggerMessage(LogLevel.Information, "{Node} LUN {Lun}: exported as {Uri}")]
    private partial void LogExported(string node, int lun, string uri);

    [LoggerMessage(LogLevel.Warning, "{Node} LUN {Lun}: serving NBD on {Address} without TLS: anyone who can reach it can read and write the LUN (give TLS credentials: nbd.tlsCreds, or --tls-creds)")]
    private partial void LogListeningInTheClear(string node, int lun, string address);

    [LoggerMessage(LogLevel.Information, "{Node} LUN {Lun}: attached as {Device} ({Method})")]
    private partial void LogAttached(string node, int lun, string device, string method);

    [LoggerMessage(LogLevel.Debug, "{Device}: requests of up to {Kb} KiB (queue/max_sectors_kb)")]
    private partial void LogQueueLimit(string device, int kb);

    [LoggerMessage(LogLevel.Warning, "{Device}: cannot set queue/max_sectors_kb to {Kb} KiB ({Reason}); the kernel's default applies")]
    private partial void LogQueueLimitFailed(string device, int kb, string reason);

    [LoggerMessage(LogLevel.Warning, "{Node} LUN {Lun}: {Device} was disconnected outside iserblockd; `iserblockctl unmap` then `map` attaches it again")]
    private partial void LogDeviceLost(string node, int lun, string device);

    [LoggerMessage(LogLevel.Information, "{Device}: the kernel dropped {Count} connection(s) (a request timed out); handed it new ones (NBD_CMD_RECONFIGURE)")]
    private partial void LogConnectionsReplaced(string device, int count);

    [LoggerMessage(LogLevel.Warning, "{Device}: cannot replace a dead connection: {Reason}")]
    private partial void LogReplacementFailed(string device, string reason);

    [LoggerMessage(LogLevel.Information, "{Node} LUN {Lun}: re-attached {Device} left by the previous daemon (NBD_CMD_RECONFIGURE)")]
    private partial void LogReattached(string node, int lun, string device);

    [LoggerMessage(LogLevel.Information, "{Node} LUN {Lun}: recovered {Device} left by the previous daemon (START/END_USER_RECOVERY)")]
    private partial void LogRecovered(string node, int lun, string device);

    [LoggerMessage(LogLevel.Warning, "{Device}: {Problem}")]
    private partial void LogUblkProblem(string device, string problem);

    [LoggerMessage(LogLevel.Information, "{Device}: size set to {Bytes} bytes (the LUN's new capacity)")]
    private partial void LogKernelResized(string device, long bytes);

    [LoggerMessage(LogLevel.Warning, "{Device}: cannot set the new size of {Bytes} bytes: {Reason}; it keeps its old size until mapped again")]
    private partial void LogKernelResizeFailed(string device, long bytes, string reason);

    [LoggerMessage(LogLevel.Information, "{Device} detached")]
    private partial void LogDetached(string device);

    [LoggerMessage(LogLevel.Warning, "{Device} left configured for the next iserblockd to re-attach: {Why}")]
    private partial void LogReleased(string device, string why);

    [LoggerMessage(LogLevel.Warning, "{Node} LUN {Lun}: final flush failed: {Reason}")]
    private partial void LogFlushFailed(string node, int lun, string reason);
}
