using System.CommandLine;
using System.Runtime.InteropServices;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Export;
using IserBlockd.Daemon.Hosting;
using IserBlockd.Daemon.Identity;
using IserBlockd.Daemon.Logging;
using IserBlockd.Transport.Selection;
using Serilog.Events;
using Serilog.Extensions.Logging;

namespace IserBlockd.Cli;

/// <summary>
/// <c>iserblockd export --portal P --target IQN --lun N (--socket PATH | --listen ADDR:PORT | --device /dev/nbdN|auto)</c>:
/// serve one LUN over NBD in the foreground until SIGINT/SIGTERM, like qemu-nbd. No configuration file.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var portal = new Option<string[]>("--portal", "-p") { Description = "Target portal ADDRESS[:PORT] (IPv6 as [ADDRESS]:PORT); repeat for fallbacks", Required = true, HelpName = "PORTAL", AllowMultipleArgumentsPerToken = false };
        var target = new Option<string>("--target", "-T") { Description = "Target IQN", Required = true, HelpName = "IQN" };
        var lun = new Option<int>("--lun", "-l") { Description = "LUN number (default 0)", HelpName = "N" };
        var socket = new Option<string?>("--socket", "-k") { Description = "Serve NBD on this Unix socket", HelpName = "PATH" };
        var listen = new Option<string?>("--listen", "-b") { Description = "Serve NBD on TCP ADDRESS:PORT (port default 10809)", HelpName = "ADDR:PORT" };
        var device = new Option<string?>("--device", "-d") { Description = "Attach as a kernel device: /dev/nbdN or auto (root)", HelpName = "DEVICE" };
        var exportName = new Option<string>("--export-name", "-x") { Description = "NBD export name (default: empty, the default export)", HelpName = "NAME", DefaultValueFactory = _ => "" };
        var readOnly = new Option<bool>("--read-only", "-r") { Description = "Export read-only" };
        var initiator = new Option<string?>("--initiator-name", "-I") { Description = "Initiator IQN (default: /etc/iscsi/initiatorname.iscsi, else one generated once and kept)", HelpName = "IQN" };
        var transport = new Option<string>("--transport") { Description = "tcp, iser or auto", DefaultValueFactory = _ => "auto", HelpName = "KIND" };
        transport.AcceptOnlyFromAmong("tcp", "iser", "auto");
        var chapUser = new Option<string?>("--chap-user") { Description = "CHAP user name the initiator logs in as", HelpName = "USER" };
        var chapSecret = new Option<string?>("--chap-secret-file") { Description = "File holding the CHAP secret (mode 0600)", HelpName = "FILE" };
        var targetUser = new Option<string?>("--target-user") { Description = "Mutual CHAP: user name the target answers as", HelpName = "USER" };
        var targetSecret = new Option<string?>("--target-secret-file") { Description = "Mutual CHAP: file holding the target's secret (mode 0600)", HelpName = "FILE" };
        var connections = new Option<int>("--connections", "-C") { Description = "Sockets for a kernel device (default 4)", DefaultValueFactory = _ => 4, HelpName = "N" };
        var replacement = new Option<double?>("--replacement-timeout") { Description = "Seconds I/O is held while the target is unreachable (default 120)", HelpName = "SECONDS" };
        var logLevel = new Option<string>("--log-level") { Description = "Log level on stderr (default warning)", DefaultValueFactory = _ => "warning", HelpName = "LEVEL" };

        var command = new Command("export", "Log in and serve one LUN over NBD in the foreground until SIGINT/SIGTERM (like qemu-nbd)")
        {
            portal, target, lun, socket, listen, device, exportName, readOnly, initiator, transport,
            chapUser, chapSecret, targetUser, targetSecret, connections, replacement, logLevel,
        };
        command.SetAction(async (result, _) =>
        {
            var errors = new List<string>();
            var portals = new List<HostPort>();
            foreach (var p in result.GetValue(portal) ?? [])
            {
                if (HostPort.TryParse(p, HostPort.IscsiPort, out var parsed, out var why)) portals.Add(parsed);
                else errors.Add($"--portal {why}");
            }
            var iqn = result.GetValue(target)!;
            if (!IscsiNameSyntax.IsValid(iqn)) errors.Add($"--target: expected {IscsiNameSyntax.Expected}");
            var ways = new[] { result.GetValue(socket), result.GetValue(listen), result.GetValue(device) }.Count(v => v != null);
            if (ways != 1) errors.Add("give exactly one of --socket PATH, --listen ADDR:PORT or --device /dev/nbdN|auto");
            HostPort? listenAddress = null;
            if (result.GetValue(listen) is { } l)
            {
                if (HostPort.TryParse(l, HostPort.NbdPort, out var parsed, out var why)) listenAddress = parsed;
                else errors.Add($"--listen {why}");
            }
            DeviceSelection? deviceSelection = null;
            if (result.GetValue(device) is { } d)
            {
                if (DeviceSelection.TryParse(d, out var parsed)) deviceSelection = parsed;
                else errors.Add($"--device: expected /dev/nbdN or auto, got \"{d}\"");
            }
            var socketPath = result.GetValue(socket) is { } s ? Path.GetFullPath(s) : null;
            if (result.GetValue(lun) is < 0 or > 16383) errors.Add("--lun: expected 0 to 16383");
            if (!LoggingSettings.TryParseLevel(result.GetValue(logLevel)!, out var level)) errors.Add($"--log-level: expected {LoggingSettings.ExpectedLevel}");
            var chap = Chap(result.GetValue(chapUser), result.GetValue(chapSecret), result.GetValue(targetUser), result.GetValue(targetSecret), errors);
            var initiatorName = result.GetValue(initiator);
            if (initiatorName == null)
            {
                try { initiatorName = new InitiatorIdentity().Resolve().Name; }
                catch (InvalidOperationException e) { errors.Add($"no initiator name: {e.Message}"); }
            }
            else if (!IscsiNameSyntax.IsValid(initiatorName)) errors.Add($"--initiator-name: expected {IscsiNameSyntax.Expected}");
            if (result.GetValue(connections) is < 1 or > 64) errors.Add("--connections: expected 1 to 64");
            var settings = DaemonSettings.Defaults;
            if (result.GetValue(replacement) is { } seconds)
            {
                if (seconds is < 0 or > 86400) errors.Add("--replacement-timeout: expected 0 to 86400 seconds");
                else settings = settings with { ReplacementTimeout = TimeSpan.FromSeconds(seconds), KernelNbdTimeout = TimeSpan.FromSeconds(seconds) + DaemonSettings.KernelTimeoutMargin };
            }
            if (errors.Count > 0)
            {
                foreach (var e in errors) Console.Error.WriteLine($"iserblockd export: {e}");
                return ExitCodes.Usage;
            }
            IscsiTransportKindNames.TryParse(result.GetValue(transport)!, out var transportKind);

            var options = new ExportOptions
            {
                Portals = portals,
                Target = iqn,
                Lun = result.GetValue(lun),
                Socket = socketPath,
                Listen = listenAddress,
                Device = deviceSelection,
                ExportName = result.GetValue(exportName)!,
                ReadOnly = result.GetValue(readOnly),
                InitiatorName = initiatorName,
                Transport = transportKind,
                Chap = chap,
                Connections = result.GetValue(connections),
            };
            var logging = LoggingSettings.Default with { Level = level };
            using var logger = DaemonLogging.CreateLogger(logging, LogConsoleDetection.Detect());
            using var loggerFactory = new SerilogLoggerFactory(logger);
            using var stop = new CancellationTokenSource();
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            return await ForegroundExport.RunAsync(options, settings, initiatorName!, loggerFactory, Console.Out, Console.Error, stop.Token);

            void Stop(PosixSignalContext context)
            {
                context.Cancel = true; // we exit ourselves, after the flush and the logout
                stop.Cancel();
            }
        });
        return command;
    }

    private static ChapSettings? Chap(string? user, string? secretFile, string? targetUser, string? targetSecretFile, List<string> errors)
    {
        if (user == null && secretFile == null && targetUser == null && targetSecretFile == null) return null;
        if (user == null || secretFile == null)
        {
            errors.Add("CHAP needs both --chap-user and --chap-secret-file");
            return null;
        }
        if ((targetUser == null) != (targetSecretFile == null))
        {
            errors.Add("mutual CHAP needs both --target-user and --target-secret-file");
            return null;
        }
        var secret = SecretFile.TryRead(Path.GetFullPath(secretFile), out var why);
        if (secret == null) errors.Add($"--chap-secret-file: {why}");
        IserBlockd.Iscsi.Security.ChapSecret? targetSecretValue = null;
        if (targetSecretFile != null)
        {
            targetSecretValue = SecretFile.TryRead(Path.GetFullPath(targetSecretFile), out var whyTarget);
            if (targetSecretValue == null) errors.Add($"--target-secret-file: {whyTarget}");
        }
        return secret == null || (targetSecretFile != null && targetSecretValue == null)
            ? null
            : new ChapSettings(user, secretFile, secret, targetUser, targetSecretFile, targetSecretValue);
    }
}
