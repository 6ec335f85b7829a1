using System.CommandLine;
using System.Text.Json;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Iscsi;
using IserBlockd.Transport.Selection;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// <c>iserblockctl discover PORTAL</c>: SendTargets discovery, printed as iscsiadm does, one line per target
/// portal: <c>ADDRESS:PORT,TPGT IQN</c> (IPv6 addresses in brackets; TPGT -1 when the target did not say).
/// </summary>
public static class DiscoverCommand
{
    public static Command Create(CtlContext context)
    {
        var portal = new Argument<string>("PORTAL") { Description = "Portal to ask: ADDRESS[:PORT] (IPv6 as [ADDRESS]:PORT)" };
        var connect = new ConnectOptions();
        var output = new OutputOptions();
        var command = new Command("discover", "List the targets a portal offers (SendTargets discovery), like iscsiadm -m discovery -t st") { portal };
        connect.AddIdentityOptions(command);
        output.AddTo(command);
        command.SetAction((result, cancellationToken) => context.RunAsync(result, output, async (loggers, stdout) =>
        {
            var text = result.GetValue(portal)!;
            if (!IscsiPortal.TryParse(text, out var asked, out var why))
                throw new CliFailure(ExitCodes.Invalid, $"portal '{text}': {why}");
            var settings = connect.Resolve(result, context.Identity, needTarget: false);
            var chooser = new TransportChooser(loggerFactory: loggers);
            var discovery = settings.ToSessionOptions() with { Portals = [asked with { PortalGroupTag = null }] };
            var (targets, _) = await chooser.DiscoverAsync(settings.Transport, discovery, cancellationToken).ConfigureAwait(false);

            if (output.IsJson(result))
            {
                var json = targets.Select(t => new DiscoveredTargetJson(t.Name,
                    t.Portals.Select(p => new DiscoveredPortalJson(p.Host, p.Port, p.PortalGroupTag ?? -1)).ToList())).ToList();
                await stdout.WriteLineAsync(JsonSerializer.Serialize(json, CliJsonContext.Default.ListDiscoveredTargetJson)).ConfigureAwait(false);
            }
            else
            {
                foreach (var t in targets)
                    foreach (var p in t.Portals)
                        await stdout.WriteLineAsync($"{p.Address},{p.PortalGroupTag ?? -1} {t.Name}").ConfigureAwait(false);
            }
            return ExitCodes.Ok;
        }));
        return command;
    }
}
