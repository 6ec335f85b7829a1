using System.CommandLine;
using System.Runtime.InteropServices;
using IserBlockd.Daemon.Cli;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Export;
using IserBlockd.Daemon.Logging;
using Serilog.Extensions.Logging;

namespace IserBlockd.Cli;

/// <summary>
/// <c>iserblockd export --portal P --target IQN [--lun N] (--socket PATH | --listen ADDR:PORT | --device /dev/nbdN|auto|ublk|/dev/ublkbN)</c>:
/// serve one LUN over NBD in the foreground until SIGINT/SIGTERM, like qemu-nbd. No configuration file. The connect
/// options (portal, target, LUN, initiator, transport, CHAP, digests) are iserblockctl's (<see cref="ConnectOptions"/>),
/// and so are the exit codes (<see cref="ExitCodes"/>).
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var connect = new ConnectOptions();
        var socket = new Option<string?>("--socket", "-k") { Description = "Serve NBD on this Unix socket", HelpName = "PATH" };
        var listen = new Option<string?>("--listen", "-b") { Description = "Serve NBD on TCP ADDRESS:PORT (port default 10809; 0: a free port, printed in the ready line)", HelpName = "ADDR:PORT" };
        var device = new Option<string?>("--device", "-d") { Description = "Attach as a kernel device: /dev/nbdN or auto (nbd), ublk or /dev/ublkbN (ublk, Linux 6.5+) (root)", HelpName = "DEVICE" };
        var exportName = new Option<string>("--export-name", "-x") { Description = "NBD export name (default: empty, the default export)", HelpName = "NAME", DefaultValueFactory = _ => "" };
        var readOnly = new Option<bool>("--read-only", "-r") { Description = "Export read-only" };
        var connections = new Option<int>("--connections", "-C") { Description = "Sockets for a kernel device (default 4)", DefaultValueFactory = _ => 4, HelpName = "N" };
        var replacement = new Option<double?>("--replacement-timeout") { Description = "Seconds I/O is held while the target is unreachable (default 120)", HelpName = "SECONDS" };
        var metricsListen = new Option<string?>("--metrics-listen") { Description = "Serve Prometheus metrics on http://ADDRESS:PORT/metrics (as the configuration's metrics.listen; port default 9809)", HelpName = "ADDR:PORT" };
        var tlsCreds = new Option<string?>("--tls-creds") { Description = "Serve NBD over TLS with the X.509 credentials in DIR (qemu's layout: ca-cert.pem, server-cert.pem, server-key.pem)", HelpName = "DIR" };
        var tls = new Option<string?>("--tls") { Description = "off, allow (TLS offered, plain clients served) or require (default with --tls-creds)", HelpName = "MODE" };
        var tlsVerifyPeer = new Option<bool>("--tls-verify-peer") { Description = "Require a client certificate signed by the CA in --tls-creds" };
        var maxConnections = new Option<int>("--max-connections") { Description = $"NBD clients served at once; more are refused (default {IserBlockd.BlockDev.Nbd.NbdExport.DefaultMaxConnections})", DefaultValueFactory = _ => IserBlockd.BlockDev.Nbd.NbdExport.DefaultMaxConnections, HelpName = "N" };
        var sendTimeout = new Option<double?>("--send-timeout") { Description = "Seconds a client may leave a reply untaken before it is disconnected (default 30)", HelpName = "SECONDS" };
        var handshakeTimeout = new Option<double?>("--handshake-timeout") { Description = "Seconds a client has to finish the NBD handshake (default 10)", HelpName = "SECONDS" };
        var commandTimeout = new Option<double?>("--command-timeout") { Description = "Seconds a SCSI command may go unanswered before it is aborted (default 30)", HelpName = "SECONDS" };
        var zeroCopyReads = new Option<string?>("--zero-copy-reads") { Description = "on (default): READ data of 64 KiB or more passes to NBD clients by splice or page reference, never copied through the daemon; off: copied (as the configuration's zeroCopyReads)", HelpName = "on|off" };
        var lowDepthPoll = new Option<int?>("--low-depth-poll-us") { Description = "Microseconds the I/O thread polls instead of sleeping while at most one request is in flight (default 100; 0: never): lower latency at queue depth one for the CPU of that wait (as the configuration's lowDepthPollMicroseconds)", HelpName = "MICROSECONDS" };
        var memoryWindows = new Option<string?>("--memory-windows") { Description = "iSER: on (default): the target reaches a buffer only through a memory window bound for one command, where the device has them; off: a protection domain of the session's own instead", HelpName = "on|off" };
        var logLevel = new Option<string>("--log-level") { Description = "Log level on stderr (default warning)", DefaultValueFactory = _ => "warning", HelpName = "LEVEL" };

        var command = new Command("export", "Log in and serve one LUN over NBD in the foreground until SIGINT/SIGTERM (like qemu-nbd)");
        connect.AddTargetOptions(command);
        foreach (var option in new Option[] { socket, listen, device, exportName, readOnly, connections, replacement, commandTimeout, metricsListen, tlsCreds, tls, tlsVerifyPeer, maxConnections, sendTimeout, handshakeTimeout, zeroCopyReads, lowDepthPoll, memoryWindows, logLevel })
            command.Add(option);
        command.SetAction(async (result, _) =>
        {
            ConnectSettings target;
            try
            {
                target = connect.Resolve(result);
            }
            catch (CliFailure e)
            {
                await Console.Error.WriteLineAsync($"iserblockd export: {e.Message}");
                return e.ExitCode;
            }
            var errors = new List<string>();
            var ways = new[] { result.GetValue(socket), result.GetValue(listen), result.GetValue(device) }.Count(v => v != null);
            if (ways != 1) errors.Add("give exactly one of --socket PATH, --listen ADDR:PORT or --device /dev/nbdN|auto|ublk|/dev/ublkbN");
            HostPort? listenAddress = null;
            if (result.GetValue(listen) is { } l)
            {
                if (HostPort.TryParse(l, HostPort.NbdPort, out var parsed, out var why, anyPort: true)) listenAddress = parsed; // :0 = a free port, in the ready line
                else errors.Add($"--listen {why}");
            }
            HostPort? metricsAddress = null;
            if (result.GetValue(metricsListen) is { } m)
            {
                if (HostPort.TryParse(m, HostPort.MetricsPort, out var parsed, out var why)) metricsAddress = parsed;
                else errors.Add($"--metrics-listen {why}");
            }
            DeviceSelection? deviceSelection = null;
            if (result.GetValue(device) is { } d)
            {
                if (DeviceSelection.TryParse(d, out var parsed)) deviceSelection = parsed;
                else errors.Add($"--device: expected /dev/nbdN, auto, ublk or /dev/ublkbN, got \"{d}\"");
            }
            var socketPath = result.GetValue(socket) is { } s ? Path.GetFullPath(s) : null;
            if (!LoggingSettings.TryParseLevel(result.GetValue(logLevel)!, out var level)) errors.Add($"--log-level: expected {LoggingSettings.ExpectedLevel}");
            if (result.GetValue(connections) is < 1 or > 64) errors.Add("--connections: expected 1 to 64");
            var settings = DaemonSettings.Defaults with { LoginTimeout = target.LoginTimeout, MetricsListen = metricsAddress };
            if (result.GetValue(replacement) is { } seconds)
            {
                if (seconds is < 0 or > 86400) errors.Add("--replacement-timeout: expected 0 to 86400 seconds");
                else settings = settings with { ReplacementTimeout = TimeSpan.FromSeconds(seconds) };
            }
            var listener = Listener(result.GetValue(tlsCreds), result.GetValue(tls), result.GetValue(tlsVerifyPeer),
                result.GetValue(handshakeTimeout), result.GetValue(sendTimeout), errors);
            if (result.GetValue(maxConnections) is < 1 or > 1024) errors.Add("--max-connections: expected 1 to 1024");
            if (result.GetValue(commandTimeout) is { } commandSeconds)
            {
                if (commandSeconds is < 1 or > 3600) errors.Add("--command-timeout: expected 1 to 3600 seconds");
                else settings = settings with { CommandTimeout = TimeSpan.FromSeconds(commandSeconds) };
            }
            settings = settings with { KernelNbdTimeout = DaemonSettings.DefaultKernelNbdTimeout(settings.ReplacementTimeout, settings.CommandTimeout) };
            if (OnOff(memoryWindows) is { } windows) settings = settings with { IserBuffers = settings.IserBuffers with { MemoryWindows = windows } };
            if (OnOff(zeroCopyReads) is { } zeroCopy) settings = settings with { ZeroCopyReads = zeroCopy };
            if (result.GetValue(lowDepthPoll) is { } poll)
            {
                if (DaemonSettings.LowDepthPollProblem(poll) is { } problem) errors.Add($"--low-depth-poll-us: {problem}");
                else settings = settings with { LowDepthPollMicroseconds = poll };
            }
            // an on|off option: null when not given or not on/off (then an error says so)
            bool? OnOff(Option<string?> option)
            {
                var value = result.GetValue(option);
                if (value is null or "on" or "off") return value == null ? null : value == "on";
                errors.Add($"{option.Name}: expected on or off, got \"{value}\"");
                return null;
            }
            if (errors.Count > 0)
            {
                foreach (var e in errors) await Console.Error.WriteLineAsync($"iserblockd export: {e}");
                return ExitCodes.Invalid;
            }

            var options = new ExportOptions
            {
                Connect = target,
                Socket = socketPath,
                Listen = listenAddress,
                Device = deviceSelection,
                ExportName = result.GetValue(exportName)!,
                ReadOnly = result.GetValue(readOnly),
                Connections = result.GetValue(connections),
                Listener = listener,
                MaxConnections = result.GetValue(maxConnections),
            };
            var logging = LoggingSettings.Default with { Level = level };
            using var logger = DaemonLogging.CreateLogger(logging, LogConsoleDetection.Detect());
            using var loggerFactory = new SerilogLoggerFactory(logger);
            if (target.InitiatorOrigin is { IsPerUserFallback: true } fallback)
                logger.Warning("initiator name {InitiatorName:l}: {Why:l}; targets whose ACL lists the host's name will refuse it (give --initiator-name to choose)", fallback.Name, fallback.Why);
            else if (target.InitiatorOrigin is { } origin)
                logger.Information("initiator name {InitiatorName:l}: {Why:l}", origin.Name, origin.Why);
            using var stop = new CancellationTokenSource();
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            using var sigquit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, Stop);
            using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, Stop);
            return await ForegroundExport.RunAsync(options, settings, loggerFactory, Console.Out, Console.Error, stop.Token);

            void Stop(PosixSignalContext context)
            {
                context.Cancel = true; // we exit ourselves, after the flush and the logout
                stop.Cancel();
            }
        });
        return command;
    }

    /// <summary>--tls-creds, --tls and --tls-verify-peer as qemu-nbd reads them (credentials mean TLS is
    /// required unless --tls allow says otherwise; --tls off ignores them), and the NBD timeouts.</summary>
    private static NbdListenerSettings Listener(string? directory, string? mode, bool verifyPeer, double? handshake, double? send, List<string> errors)
    {
        var problems = new List<(string Field, string Message)>();
        var (resolved, creds) = NbdListenerSettings.ResolveTls(mode, directory, verifyPeer, problems);
        foreach (var (field, message) in problems)
            errors.Add($"{field switch { "tlsCreds" => "--tls-creds", "tlsVerifyPeer" => "--tls-verify-peer", _ => "--tls" }}: {message}");
        var defaults = NbdListenerSettings.Default;
        if (handshake is < 1 or > 3600) errors.Add("--handshake-timeout: expected 1 to 3600 seconds");
        if (send is < 1 or > 86400) errors.Add("--send-timeout: expected 1 to 86400 seconds");
        return new NbdListenerSettings(resolved, creds, verifyPeer && resolved != NbdListenerSettings.Off,
            handshake is { } h ? TimeSpan.FromSeconds(h) : defaults.HandshakeTimeout,
            send is { } t ? TimeSpan.FromSeconds(t) : defaults.SendTimeout);
    }
}
