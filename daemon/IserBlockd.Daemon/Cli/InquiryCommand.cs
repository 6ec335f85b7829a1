using System.CommandLine;
using System.Text.Json;
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
            var options = new IscsiSessionOptions
            {
                Portals = settings.Portals,
                TargetName = settings.TargetName,
                InitiatorName = settings.InitiatorName,
                Chap = settings.Chap,
                TargetChap = settings.TargetChap,
                LoginTimeout = settings.LoginTimeout,
            };
            var chooser = new TransportChooser(loggerFactory: loggers);
            var (session, choice) = await chooser.LoginAsync(settings.Transport, options, cancellationToken).ConfigureAwait(false);
            await using (session.ConfigureAwait(false))
            {
                ScsiLun lun;
                try
                {
                    lun = await session.OpenLunAsync(settings.Lun, cancellationToken).ConfigureAwait(false);
                }
                catch (ScsiCommandException e) when (e.Sense is { Key: SenseKey.IllegalRequest, AdditionalSenseCode: 0x25 })
                {
                    throw new CliFailure(CtlExitCodes.NotFound, $"LUN {settings.Lun} does not exist on {settings.TargetName}");
                }
                catch (IserBlockd.Iscsi.IscsiException e) when (e is not ScsiCommandException && e.Message.Contains("not connected", StringComparison.Ordinal))
                {
                    throw new CliFailure(CtlExitCodes.NotFound, e.Message);
                }
                var report = new InquiryJson
                {
                    Target = settings.TargetName!,
                    Portal = session.Portal.ToString(),
                    Transport = choice.Name,
                    Lun = settings.Lun,
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
            return CtlExitCodes.Ok;
        }));
        return command;
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
