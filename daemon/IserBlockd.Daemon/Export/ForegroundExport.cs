using IserBlockd.BlockDev.Buffers;
using IserBlockd.BlockDev.Kernel;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Hosting;
using IserBlockd.Daemon.Luns;
using IserBlockd.Daemon.Mappings;
using IserBlockd.Daemon.Sessions;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Transport;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Export;

/// <summary>
/// <c>iserblockd export</c>, qemu-nbd's habit: log in, serve one LUN over NBD (or as /dev/nbdN), print one
/// ready line on stdout, and on SIGINT/SIGTERM stop serving, flush the LUN and log out. Everything else
/// (logs, errors) goes to stderr.
/// </summary>
public static partial class ForegroundExport
{
    public static async Task<int> RunAsync(ExportOptions options, DaemonSettings settings, string initiatorName, ILoggerFactory loggerFactory,
        TextWriter output, TextWriter error, CancellationToken stop)
    {
        var logger = loggerFactory.CreateLogger(typeof(ForegroundExport).FullName!);
        var node = options.ToNode();
        var mapping = options.ToMapping();
        await using var session = new NodeSession(node, initiatorName, settings, loggerFactory);
        try
        {
            await session.LoginAsync(stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return ExitCodes.Ok;
        }
        catch (IscsiException e)
        {
            await error.WriteLineAsync($"iserblockd: {LoginFailure(e, options)}").ConfigureAwait(false);
            return e is IscsiTransportException ? ExitCodes.Unavailable : ExitCodes.Failure;
        }

        var buffers = new PinnedBlockBufferPool(new PinnedBlockBufferPoolOptions { MaxBufferSize = ScsiLunBlockDevice.MaxRequestBytes });
        var serverOptions = new NbdServerOptions();
        await using var endpoints = new NbdEndpointRegistry(serverOptions, loggerFactory);
        MappedLun mapped;
        try
        {
            var device = await session.OpenBlockDeviceAsync(options.Lun, options.ReadOnly, buffers, stop).ConfigureAwait(false);
            var backend = KernelDeviceOptions.BackendIdentifierFor(options.Target, options.Lun);
            var kernel = new KernelDeviceOptions(settings.KernelNbdTimeout, backend, Math.Max(1, options.Connections));
            mapped = await MappedLun.StartAsync(node.Name, mapping, device, endpoints, kernel, serverOptions, loggerFactory, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return ExitCodes.Ok;
        }
        catch (Exception e) when (e is IscsiException or KernelNbdException or IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"iserblockd: {Describe(e, options)}").ConfigureAwait(false);
            return e is KernelNbdException { Errno: 1 } or UnauthorizedAccessException ? ExitCodes.NoPermission : ExitCodes.Failure;
        }

        await output.WriteLineAsync($"ready: {mapped.DevicePath ?? mapped.Exports[0]}").ConfigureAwait(false);
        await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);

        try
        {
            await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        LogStopping(logger);
        using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await mapped.StopAsync(keepDeviceInUse: false, flush: true, budget.Token).ConfigureAwait(false);
        await session.LogoutAsync(budget.Token).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    private static string LoginFailure(IscsiException e, ExportOptions options) => e switch
    {
        IscsiLoginException => e.Message,
        IscsiTransportException => $"cannot reach {string.Join(", ", options.Portals)}: {e.Message}",
        _ => $"login to {options.Target} failed: {e.Message}",
    };

    private static string Describe(Exception e, ExportOptions options) => e switch
    {
        KernelNbdException k => $"cannot attach a kernel NBD device: {k.Message}",
        IOException or System.Net.Sockets.SocketException => $"cannot serve NBD on {options.Socket ?? options.Listen?.ToString()}: {e.Message}",
        _ => $"LUN {options.Lun} of {options.Target}: {e.Message}",
    };

    [LoggerMessage(LogLevel.Information, "Stopping: withdrawing the export, flushing the LUN, logging out")]
    private static partial void LogStopping(ILogger logger);
}
