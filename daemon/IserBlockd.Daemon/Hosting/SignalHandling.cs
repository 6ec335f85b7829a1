using System.Runtime.InteropServices;
using IserBlockd.Daemon.Control;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Hosting;

/// <summary>
/// Signals, as a daemon that serves block devices must take them: SIGHUP reloads the configuration; SIGINT, SIGTERM
/// and SIGQUIT (the host's console lifetime) and every other signal whose default action would end the process
/// (SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE's kin…) start the orderly stop — flush, detach, log out. Only SIGKILL ends
/// the daemon without it.
/// </summary>
public sealed partial class SignalHandling(IDaemonControl control, IHostApplicationLifetime lifetime, ILogger<SignalHandling> logger) : IHostedService, IDisposable
{
    // Linux numbers of the signals whose default action terminates the process and that the runtime leaves alone
    // (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT and the real-time signals are the runtime's own).
    private static readonly (int Number, string Name)[] Terminating =
    [
        (10, "SIGUSR1"), (12, "SIGUSR2"), (14, "SIGALRM"), (16, "SIGSTKFLT"), (24, "SIGXCPU"), (25, "SIGXFSZ"),
        (26, "SIGVTALRM"), (27, "SIGPROF"), (29, "SIGIO"), (30, "SIGPWR"),
    ];

    private readonly List<PosixSignalRegistration> _registrations = [];
    private int _reloading;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnHangup));
        if (OperatingSystem.IsLinux())
        {
            foreach (var (number, name) in Terminating)
                _registrations.Add(PosixSignalRegistration.Create((PosixSignal)number, context => OnTerminating(context, name)));
        }
        return Task.CompletedTask;
    }

    private void OnHangup(PosixSignalContext context)
    {
        context.Cancel = true;
        if (Interlocked.Exchange(ref _reloading, 1) != 0)
        {
            LogReloadBusy();
            return;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                var result = await control.ReloadAsync(lifetime.ApplicationStopping).ConfigureAwait(false);
                if (!result.Ok) LogReloadFailed(result.Error?.Message ?? "");
            }
            catch (Exception e)
            {
                LogReloadFailed(e.Message);
            }
            finally
            {
                Volatile.Write(ref _reloading, 0);
            }
        });
    }

    private void OnTerminating(PosixSignalContext context, string name)
    {
        context.Cancel = true;
        LogStopSignal(name);
        lifetime.StopApplication();
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        _registrations.Clear();
    }

    [LoggerMessage(LogLevel.Warning, "SIGHUP: a reload is already running; ignored")]
    private partial void LogReloadBusy();

    [LoggerMessage(LogLevel.Error, "SIGHUP: reload failed: {Reason}")]
    private partial void LogReloadFailed(string reason);

    [LoggerMessage(LogLevel.Warning, "{Signal}: stopping in order (flush, detach, log out)")]
    private partial void LogStopSignal(string signal);
}
