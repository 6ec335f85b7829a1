using IserBlockd.BlockDev.Buffers;
using IserBlockd.BlockDev.Kernel;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.Daemon.Cli;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Hosting;
using IserBlockd.Daemon.Luns;
using IserBlockd.Daemon.Mappings;
using IserBlockd.Daemon.Metrics;
using IserBlockd.Daemon.Runtime;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.ConnectionPort;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Export;

/// <summary>
/// <c>iserblockd export</c>, qemu-nbd's habit: log in, serve one LUN over NBD (or as /dev/nbdN), print one
/// ready line on stdout, and on SIGINT/SIGTERM stop serving, flush the LUN and log out. Everything else
/// (logs, errors) goes to stderr.
/// </summary>
public static partial class ForegroundExport
{
    public static async Task<int> RunAsync(ExportOptions options, DaemonSettings settings, ILoggerFactory loggerFactory,
        TextWriter output, TextWriter error, CancellationToken stop)
    {
        var logger = loggerFactory.CreateLogger(typeof(ForegroundExport).FullName!);
        PrometheusEndpoint? metrics = null;
        if (settings.MetricsListen is { } metricsListen)
        {
            try
            {
                metrics = PrometheusEndpoint.Start(metricsListen);
            }
            catch (IOException e)
            {
                await error.WriteLineAsync($"iserblockd: {e.Message}").ConfigureAwait(false);
                return ExitCodes.Failure;
            }
        }
        using var metricsEndpoint = metrics;
        var node = options.ToNode();
        var serverOptions = settings.ServerOptions(); // TLS, if any, is the mapping's
        await using var shared = new SharedResources(loggerFactory, settings.IserBuffers, serverOptions);
        // The daemon's supervisor: the same reinstatement, backoff and replacement timeout; one login attempt here.
        await using var supervisor = new NodeSupervisor(node, options.Connect.InitiatorName, settings, shared, loggerFactory);
        try
        {
            await supervisor.ConnectAsync(stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return ExitCodes.Ok;
        }
        catch (IscsiException e)
        {
            await error.WriteLineAsync($"iserblockd: {LoginFailure(e, options)}").ConfigureAwait(false);
            return CliFailure.From(e).ExitCode;
        }

        int lun;
        if (options.Connect.Lun is { } asked)
        {
            lun = (int)asked;
        }
        else
        {
            try
            {
                var luns = await LunSurvey.DescribeAsync(supervisor.Session!, stop).ConfigureAwait(false);
                if (LunSurvey.FirstDisk(luns) is not { } disk)
                {
                    await error.WriteLineAsync($"iserblockd: {options.Target} has no disk LUN (it reports " +
                        (luns.Count == 0 ? "no LUNs" : string.Join(", ", luns.Select(l => $"LUN {l.Lun}: {l.Type}"))) + "); give --lun").ConfigureAwait(false);
                    return ExitCodes.NotFound;
                }
                lun = disk.Lun;
                await error.WriteLineAsync($"iserblockd: no --lun given: serving LUN {lun} ({disk.Vendor} {disk.Product}, " +
                    $"{disk.SizeBytes} bytes), the first disk LUN of {options.Target}").ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return ExitCodes.Ok;
            }
            catch (IscsiException e)
            {
                await error.WriteLineAsync($"iserblockd: REPORT LUNS on {options.Target} failed: {e.Message}; give --lun").ConfigureAwait(false);
                return CliFailure.From(e).ExitCode;
            }
        }
        var mapping = options.ToMapping(lun);

        MappedLun mapped;
        try
        {
            var device = await supervisor.OpenBlockDeviceAsync(lun, options.ReadOnly, shared.Buffers, stop).ConfigureAwait(false);
            var backend = KernelDeviceOptions.BackendIdentifierFor(options.Target, lun);
            var kernel = new KernelDeviceOptions(settings.KernelNbdTimeout, backend, Math.Max(1, options.Connections));
            mapped = await MappedLun.StartAsync(node.Name, mapping, device, shared.Endpoints, kernel, serverOptions, loggerFactory, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return ExitCodes.Ok;
        }
        catch (Exception e) when (e is IscsiException or KernelNbdException or IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException
                                   or System.Security.Cryptography.CryptographicException)
        {
            await error.WriteLineAsync($"iserblockd: {Describe(e, options, lun)}").ConfigureAwait(false);
            return e switch
            {
                KernelNbdException { Errno: 1 } or IserBlockd.BlockDev.Kernel.Ublk.UblkException { Errno: 1 or 13 } or UnauthorizedAccessException
                    => ExitCodes.AccessDenied,
                IscsiException => CliFailure.From(e).ExitCode,
                _ => ExitCodes.Failure,
            };
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
        await supervisor.LogoutSessionAsync(budget.Token).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    private static string LoginFailure(IscsiException e, ExportOptions options) => e switch
    {
        IscsiLoginException => e.Message,
        IscsiTransportException => $"cannot reach {string.Join(", ", options.Connect.Portals.Select(p => p.Address))}: {e.Message}",
        _ => $"login to {options.Target} failed: {e.Message}",
    };

    private static string Describe(Exception e, ExportOptions options, int lun) => e switch
    {
        KernelNbdException k => $"cannot attach a kernel NBD device: {k.Message}",
        IserBlockd.BlockDev.Kernel.Ublk.UblkException u => $"cannot attach a ublk device: {u.Message}",
        IOException or System.Net.Sockets.SocketException => $"cannot serve NBD on {options.Socket ?? options.Listen?.ToString()}: {e.Message}",
        _ => $"LUN {lun} of {options.Target}: {e.Message}",
    };

    [LoggerMessage(LogLevel.Information, "Stopping: withdrawing the export, flushing the LUN, logging out")]
    private static partial void LogStopping(ILogger logger);
}
