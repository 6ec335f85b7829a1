using System.Net.Sockets;
using IserBlockd.BlockDev;
using IserBlockd.BlockDev.Kernel;
using IserBlockd.Daemon.Configuration;

namespace IserBlockd.Daemon.Mappings;

/// <summary>
/// Attaches a LUN as /dev/nbdN, or takes back the device a previous daemon left configured for it
/// (found by its backend identifier), so that a restart is a pause for the device's users.
/// </summary>
public static class KernelDevices
{
    private const string SysBlock = "/sys/block";

    public static async Task<(KernelNbdDevice Device, bool Reattached)> AttachAsync(DeviceSelection selection, IBlockDevice device,
        KernelDeviceOptions options, Func<Socket, CancellationToken, Task> serve, CancellationToken cancellationToken)
    {
        var connections = device.Features.HasFlag(BlockDeviceFeatures.MultiConnection) ? options.Connections : 1;
        var request = KernelAttachRequest.For(device) with
        {
            Index = selection.Index is { } i ? (uint)i : null,
            Connections = connections,
            IoTimeout = options.IoTimeout,
            DeadConnectionTimeout = options.DeadConnectionTimeout ?? options.IoTimeout,
            BackendIdentifier = options.BackendIdentifier,
            Method = options.Method,
            ReplaceDeadConnections = options.ReplaceDeadConnections,
        };

        // A device left configured by the previous daemon is taken back even when ioctls were asked for: only
        // netlink can (the ioctl path has no RECONFIGURE), and detaching it would fail its users' I/O.
        var previous = FindByBackend(options.BackendIdentifier);
        if (previous is { } index && (selection.Index is null || selection.Index == index)
            && KernelNbd.NetlinkAvailable() && KernelNbd.Status(index) is [{ Connected: true }])
        {
            var reattached = await KernelNbd.ReattachAsync(index, request with { Index = index }, serve, cancellationToken).ConfigureAwait(false);
            return (reattached, true);
        }
        if (selection.Index is { } wanted && Backend((uint)wanted) is { Length: > 0 } other && other != options.BackendIdentifier)
            throw new KernelNbdException($"/dev/nbd{wanted} is in use for {other}");
        return (await KernelNbd.AttachAsync(request, serve, cancellationToken).ConfigureAwait(false), false);
    }

    /// <summary>The nbd device whose backend identifier is <paramref name="backend"/>, if any.</summary>
    public static uint? FindByBackend(string backend)
    {
        if (!Directory.Exists(SysBlock)) return null;
        foreach (var dir in Directory.EnumerateDirectories(SysBlock, "nbd*"))
        {
            if (!uint.TryParse(Path.GetFileName(dir).AsSpan(3), out var index)) continue;
            if (Backend(index) == backend) return index;
        }
        return null;
    }

    private static string? Backend(uint index)
    {
        try { return File.ReadAllText($"{SysBlock}/nbd{index}/backend").TrimEnd('\n'); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
