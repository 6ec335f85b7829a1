using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using IserBlockd.Daemon.Control;
using IserBlockd.Daemon.Luns;
using IserBlockd.Transport.Selection;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// <c>iserblockctl luns NODE</c> (through the daemon's session) or <c>iserblockctl luns --portal P --target IQN</c> (a
/// session of its own): every LUN the target reports, with type, size, block size, vendor, product and whether the
/// daemon maps it (REPORT LUNS, INQUIRY, READ CAPACITY), like <c>lsscsi</c> for one target.
/// </summary>
public static class LunsCommand
{
    public static Command Create(CtlContext context)
    {
        var node = new Argument<string?>("NODE") { Description = "Node name from the daemon's configuration (or give --portal and --target)", Arity = ArgumentArity.ZeroOrOne };
        var connect = new ConnectOptions();
        var control = new ControlCommandSupport();
        var command = new Command("luns", "List the LUNs a target has: type, size, block size, vendor, product, mapped or not") { node };
        connect.AddTargetOptions(command, lun: false, required: false);
        control.AddTo(command);
        command.SetAction((result, cancellationToken) => context.RunAsync(result, control.Output, async (loggers, stdout) =>
        {
            if (result.GetValue(node) is { } name)
            {
                if (result.GetValue(connect.Portal) is { Length: > 0 })
                    throw new CliFailure(ExitCodes.Invalid, "give either NODE or --portal and --target, not both");
                return await control.SendAsync(result, stdout, new ControlSocketRequest { Command = "luns", Node = name },
                    (response, output, json) => RenderAsync(response.Luns ?? [], output, json), cancellationToken).ConfigureAwait(false);
            }
            if (result.GetValue(connect.Portal) is not { Length: > 0 })
                throw new CliFailure(ExitCodes.Invalid, "give a NODE of the daemon, or --portal and --target");
            var settings = connect.Resolve(result, context.Identity);
            var chooser = new TransportChooser(loggerFactory: loggers);
            var (session, _) = await chooser.LoginAsync(settings.Transport, settings.ToSessionOptions(), cancellationToken).ConfigureAwait(false);
            List<LunDescription> luns;
            await using (session.ConfigureAwait(false))
            {
                luns = await LunSurvey.DescribeAsync(session, cancellationToken).ConfigureAwait(false);
                await session.LogoutAsync(cancellationToken).ConfigureAwait(false);
            }
            await MarkMappedAsync(luns, settings.TargetName!, result.GetValue(control.Socket)!, cancellationToken).ConfigureAwait(false);
            await RenderAsync(luns, stdout, control.Output.IsJson(result)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>Which of the LUNs a running daemon maps (any node of the same target); no daemon: none.</summary>
    private static async Task MarkMappedAsync(List<LunDescription> luns, string target, string socket, CancellationToken cancellationToken)
    {
        if (!File.Exists(socket)) return;
        var list = await ControlClient.SendAsync(socket, new ControlSocketRequest { Command = "list" }, cancellationToken).ConfigureAwait(false);
        foreach (var session in list.Sessions ?? [])
        {
            if (session.Target != target) continue;
            foreach (var mapped in session.Luns.Where(l => l.SizeBytes > 0))
            {
                if (luns.Find(l => l.Lun == mapped.Lun) is not { } lun) continue;
                lun.Mapped = true;
                lun.Device = mapped.Device;
                lun.Exports = mapped.Exports;
            }
        }
    }

    private static async Task RenderAsync(List<LunDescription> luns, TextWriter stdout, bool json)
    {
        if (json)
        {
            await stdout.WriteLineAsync(JsonSerializer.Serialize(luns, ControlOutputJsonContext.Readable.ListLunDescription)).ConfigureAwait(false);
            return;
        }
        var table = new TextTable("LUN", "TYPE", "SIZE", "BLOCK", "VENDOR", "PRODUCT", "REV", "MAPPED");
        foreach (var l in luns)
        {
            var where = l.Mapped ? string.Join(" ", new[] { l.Device }.Concat(l.Exports ?? []).Where(x => x != null)) : "no";
            table.Add(l.Lun.ToString(CultureInfo.InvariantCulture), l.Connected ? l.Type : l.Type + " (not connected)",
                l.SizeBytes is { } size ? ControlCommandSupport.Bytes(size) : "-", l.BlockSize?.ToString(CultureInfo.InvariantCulture) ?? "-",
                l.Vendor, l.Product, l.Revision, l.Error != null ? "error: " + l.Error : where.Length == 0 ? "yes" : where);
        }
        await table.WriteAsync(stdout).ConfigureAwait(false);
    }
}
