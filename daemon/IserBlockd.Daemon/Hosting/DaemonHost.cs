using IserBlockd.Daemon.Cli;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Control;
using IserBlockd.Daemon.Logging;
using IserBlockd.Daemon.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Serilog;

namespace IserBlockd.Daemon.Hosting;

/// <summary>
/// <c>iserblockd run</c>: the generic host with Serilog, the control socket, the daemon runtime, the
/// systemd watchdog and READY/STOPPING notifications, in that start order (stop runs in reverse).
/// </summary>
public static class DaemonHost
{
    /// <summary>Above the per-step bounds of the stop path and below the unit's TimeoutStopSec (90 s).</summary>
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(80);

    public static async Task<int> RunAsync(DaemonSettings settings, string configPath, string initiatorName, TextWriter error)
    {
        var logger = DaemonLogging.CreateLogger(settings.Logging, LogConsoleDetection.Detect());
        try
        {
            var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings
            {
                DisableDefaults = true,
                ApplicationName = "iserblockd",
                ContentRootPath = "/",
            });
            builder.Logging.ClearProviders();
            builder.Services.AddSerilog(logger, dispose: false);
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = ShutdownTimeout);
            builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
            builder.Services.AddSingleton<ISystemdNotifier>(sp => new BestEffortSystemdNotifier(new SystemdNotifier(),
                sp.GetRequiredService<ILogger<BestEffortSystemdNotifier>>()));
            builder.Services.AddSingleton<ServiceStatus>();
            builder.Services.AddSingleton(settings);
            builder.Services.AddSingleton(sp => new DaemonRuntime(settings, configPath, initiatorName,
                sp.GetRequiredService<ServiceStatus>(), sp.GetRequiredService<ILoggerFactory>()));
            builder.Services.AddSingleton<IDaemonControl>(sp => sp.GetRequiredService<DaemonRuntime>());
            builder.Services.AddSingleton(sp => new ControlServer(settings.ControlSocket,
                sp.GetRequiredService<IDaemonControl>(), sp.GetRequiredService<ILogger<ControlServer>>()));

            builder.Services.AddHostedService<SignalHandling>(); // first: SIGHUP must never end a starting daemon
            if (settings.MetricsListen is { } metrics)
                builder.Services.AddHostedService(sp => new MetricsService(metrics, sp.GetRequiredService<ILogger<MetricsService>>()));
            builder.Services.AddHostedService(sp => new ControlSocketService(sp.GetRequiredService<ControlServer>()));
            builder.Services.AddHostedService(sp => sp.GetRequiredService<DaemonRuntime>());
            builder.Services.AddHostedService<SystemdWatchdog>();
            builder.Services.AddHostedService(sp => new SystemdReadiness(sp.GetRequiredService<ISystemdNotifier>(),
                () => sp.GetRequiredService<DaemonRuntime>().Summary()));

            using var host = builder.Build();
            // The control socket first: a second daemon on the same socket stops here, with one line, before any
            // service starts (its logins would fence the running daemon's sessions).
            host.Services.GetRequiredService<ControlServer>().Start();
            await host.RunAsync().ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
        {
            logger.Fatal("iserblockd cannot start: {Reason}", e.Message);
            await error.WriteLineAsync($"iserblockd: cannot start: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }
        finally
        {
            await logger.DisposeAsync().ConfigureAwait(false);
        }
    }
}
