using System.CommandLine;
using System.Text.Json;
using IserBlockd.Daemon.Luns;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Transport.Selection;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// <c>iserblockctl inquiry --portal P --target IQN [--lun N]</c>: logs in, probes the LUN (INQUIRY, READ CAPACITY,
/// VPD pages) and prints vendor, product, revision, capacity in bytes and logical block size; logs out.
/// </summary>
public static class InquiryCommand
{
    public static Command Create(CtlContext context)
    {
        var connect = new ConnectOptions();
        var output = new OutputOptions();
        var command = new Command("inquiry", "Log in and describe one LUN: vendor, product, revision, capacity, block size");
        connect.AddTargetOptions(command);
        output.AddTo(command);
        command.SetAction((result, cancellationToken) => context.RunAsync(result, output, async (loggers, stdout) =>
        {
            var settings = connect.Resolve(result, context.Identity);
            var chooser = new TransportChooser(loggerFactory: loggers);
            var (session, choice) = await chooser.LoginAsync(settings.Transport, settings.ToSessionOptions(), cancellationToken).ConfigureAwait(false);
            await using (session.ConfigureAwait(false))
            {
                var number = settings.Lun ?? await FirstDiskLunAsync(session, settings.TargetName!, context.Error, "inquiry", cancellationToken).ConfigureAwait(false);
                ScsiLun lun;
                try
                {
                    lun = await session.OpenLunAsync(number, cancellationToken).ConfigureAwait(false);
                }
                catch (ScsiCommandException e) when (e.Sense is { Key: SenseKey.IllegalRequest, AdditionalSenseCode: 0x25 })
                {
                    throw new CliFailure(ExitCodes.NotFound, $"LUN {number} does not exist on {settings.TargetName}");
                }
                catch (IserBlockd.Iscsi.IscsiException e) when (e is not ScsiCommandException && e.Message.Contains("not connected", StringComparison.Ordinal))
                {
                    throw new CliFailure(ExitCodes.NotFound, e.Message);
                }
                var report = new InquiryJson
                {
                    Target = settings.TargetName!,
                    Portal = session.Portal.ToString(),
                    Transport = choice.Name,
                    Lun = number,
                    Vendor = lun.Inquiry.Vendor,
                    Product = lun.Inquiry.Product,
                    Revision = lun.Inquiry.Revision,
                    DeviceType = lun.Inquiry.PeripheralDeviceType,
                    SerialNumber = lun.SerialNumber,
                    Identifiers = lun.Designators.Where(d => d.IdentifiesLogicalUnit).Select(d => d.ToString()).ToList(),
                    CapacityBytes = lun.SizeBytes,
                    Blocks = lun.BlockCount,
                    LogicalBlockSize = lun.BlockSize,
                    PhysicalBlockSize = lun.Capacity.PhysicalBlockLength,
                    ThinProvisioned = lun.Capacity.ProvisioningManagementEnabled,
                    Unmap = lun.SupportsUnmap,
                    WriteSameUnmap = lun.SupportsWriteSameUnmap,
                };
                await session.LogoutAsync(cancellationToken).ConfigureAwait(false);
                if (output.IsJson(result))
                    await stdout.WriteLineAsync(JsonSerializer.Serialize(report, CliJsonContext.Default.InquiryJson)).ConfigureAwait(false);
                else
                    await stdout.WriteAsync(FormatText(report)).ConfigureAwait(false);
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>No LUN given: the first disk LUN the target reports, said on standard error (as <c>iserblockd export</c> does).</summary>
    public static async Task<ulong> FirstDiskLunAsync(IscsiSession session, string target, TextWriter error, string command, CancellationToken cancellationToken)
    {
        var luns = await LunSurvey.DescribeAsync(session, cancellationToken).ConfigureAwait(false);
        var disk = LunSurvey.FirstDisk(luns) ?? throw new CliFailure(ExitCodes.NotFound,
            $"{target} has no disk LUN (it reports {(luns.Count == 0 ? "no LUNs" : string.Join(", ", luns.Select(l => $"LUN {l.Lun}: {l.Type}")))}); give --lun");
        await error.WriteLineAsync($"iserblockctl {command}: no --lun given: using LUN {disk.Lun} ({disk.Vendor} {disk.Product}), the first disk LUN of {target}").ConfigureAwait(false);
        return (ulong)disk.Lun;
    }

    public static string FormatText(InquiryJson r)
    {
        var lines = new List<(string, string)>
        {
            ("Target", r.Target),
            ("Portal", $"{r.Portal} ({r.Transport})"),
            ("LUN", r.Lun.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("Vendor", r.Vendor),
            ("Product", r.Product),
            ("Revision", r.Revision),
            ("Capacity", $"{r.CapacityBytes} bytes"),
            ("Logical block size", r.LogicalBlockSize.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("Physical block size", r.PhysicalBlockSize.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("Blocks", r.Blocks.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        };
        if (r.SerialNumber != null) lines.Add(("Serial number", r.SerialNumber));
        foreach (var id in r.Identifiers) lines.Add(("Identifier", id));
        lines.Add(("Thin provisioned", r.ThinProvisioned ? "yes" : "no"));
        lines.Add(("UNMAP", r.Unmap ? "yes" : "no"));
        lines.Add(("WRITE SAME UNMAP", r.WriteSameUnmap ? "yes" : "no"));
        var width = lines.Max(l => l.Item1.Length) + 1;
        return string.Concat(lines.Select(l => $"{(l.Item1 + ":").PadRight(width)} {l.Item2}\n"));
    }
}
