using System.Runtime.InteropServices;
using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Kernel.Ublk;

/// <summary>
/// ibd-kernel-attach ublk: a file served as /dev/ublkbN through the ublk library alone (no iSCSI), for the VM
/// scenarios. Prints "READY /dev/ublkbN" once the block device exists (or has been recovered with --recover ID),
/// serves until SIGINT/SIGTERM, then detaches (STOP_DEV + DEL_DEV) or, with --on-exit release, leaves the device
/// to the next server. Killed with SIGKILL it leaves the device quiesced, holding I/O: the recovery test.
/// </summary>
internal static class UblkServe
{
    public static async Task<int> Run(Options options)
    {
        var backing = options.String("--backing") ?? throw new ArgumentException("--backing FILE is required");
        var size = options.Long("--size") ?? throw new ArgumentException("--size BYTES is required");
        var blockSize = (int)(options.Long("--block-size") ?? 512);
        using var device = FileBlockDevice.Open(backing, new FileBlockDeviceOptions { Size = size, LogicalBlockSize = blockSize });
        var ublkOptions = new UblkDeviceOptions
        {
            Id = options.Long("--id") is { } id ? (int)id : null,
            Queues = (int)(options.Long("--queues") ?? 1),
            QueueDepth = (int)(options.Long("--depth") ?? 64),
            BackendIdentifier = options.String("--backend"),
        };

        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

        var recover = options.Long("--recover");
        var ublk = recover is { } rid
            ? await KernelUblkDevice.RecoverAsync((int)rid, device, ublkOptions)
            : await KernelUblkDevice.AddAsync(device, ublkOptions);
        ublk.Failed += e => Console.Error.WriteLine($"ibd-kernel-attach: {e.Message}");
        Console.WriteLine($"READY {ublk.DevicePath} features={ublk.Features}" + (recover is null ? "" : $" recovered (waited {ublk.RecoveryWait.TotalSeconds:0.0} s for the kernel)"));

        try { await Task.WhenAny(ublk.Ended, Task.Delay(Timeout.Infinite, stop.Token)); }
        catch (OperationCanceledException) { }
        if (!stop.IsCancellationRequested)
        {
            Console.WriteLine($"ENDED {ublk.DevicePath}: stopped by someone else");
            return 0;
        }
        if (options.String("--on-exit") is "release")
        {
            await ublk.ReleaseAsync();
            Console.WriteLine($"RELEASED {ublk.DevicePath} errors={ublk.Errors}");
        }
        else
        {
            await ublk.DetachAsync();
            Console.WriteLine($"DETACHED {ublk.DevicePath} errors={ublk.Errors}");
        }
        return 0;
    }
}
