using IserBlockd.BlockDev;
using IserBlockd.BlockDev.Kernel.Ublk;
using IserBlockd.Daemon.Configuration;

namespace IserBlockd.Daemon.Mappings;

/// <summary>
/// Attaches a LUN as /dev/ublkbN, or recovers the one a previous daemon left for it (found by the backend tag the
/// device keeps), so that a restart is a pause for its users as with NBD_CMD_RECONFIGURE. The kernel's queues are
/// the NBD connections' count; each queue holds up to <see cref="KernelDeviceOptions.UblkQueueDepth"/> requests.
/// </summary>
public static class UblkDevices
{
    public static async Task<(KernelUblkDevice Device, bool Recovered)> AttachAsync(DeviceSelection selection, IBlockDevice device,
        KernelDeviceOptions options, CancellationToken cancellationToken)
    {
        var ublkOptions = new UblkDeviceOptions
        {
            Id = selection.Index,
            Queues = Math.Max(1, options.Connections),
            QueueDepth = options.UblkQueueDepth,
            BackendIdentifier = options.BackendIdentifier,
        };
        if (KernelUblkDevice.FindByBackend(options.BackendIdentifier) is { } previous &&
            (selection.Index is null || selection.Index == previous.Id) && previous.State != UblkDeviceState.Dead)
        {
            var recovered = await KernelUblkDevice.RecoverAsync(previous.Id, device, ublkOptions with { Id = previous.Id }, cancellationToken)
                .ConfigureAwait(false);
            return (recovered, true);
        }
        return (await KernelUblkDevice.AddAsync(device, ublkOptions, cancellationToken).ConfigureAwait(false), false);
    }
}
