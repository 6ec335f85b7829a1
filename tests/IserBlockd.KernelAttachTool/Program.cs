using System.Globalization;
using System.Runtime.InteropServices;
using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Kernel;
using IserBlockd.BlockDev.Nbd;

// ibd-kernel-attach: attach a file as /dev/nbdN for the VM scenarios, before the daemon exists.
//   ibd-kernel-attach attach   --backing FILE --size BYTES [--block-size 512] [--index N] [--connections N]
//                              [--timeout S] [--dead-conn-timeout S] [--method auto|netlink|ioctl] [--backend ID]
//                              [--replace-dead-connections yes]
//   ibd-kernel-attach reattach --index N --backing FILE --size BYTES [same options]   (NBD_CMD_RECONFIGURE)
//   ibd-kernel-attach status   [--index N]
//   ibd-kernel-attach detach   --index N
//   ibd-kernel-attach ublk     --backing FILE --size BYTES [--block-size 512] [--id N] [--queues N] [--depth N]
//                              [--backend ID] [--recover ID] [--on-exit detach|release]   (/dev/ublkbN, UblkServe.cs)
// attach/reattach print "READY /dev/nbdN" once the kernel has the device, serve until SIGINT/SIGTERM,
// then detach (NBD_CMD_DISCONNECT) and exit 0. Killed with SIGKILL, they leave the device configured
// and waiting for a reattach: that is the daemon-restart test.
if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine("usage: ibd-kernel-attach attach|reattach|status|detach [options] (see Program.cs)");
    return 2;
}

try
{
    var options = Options.Parse(args.AsSpan(1));
    switch (args[0])
    {
        case "attach":
        case "reattach":
            return await Serve(args[0] == "reattach", options);
        case "ublk":
            return await UblkServe.Run(options);
        case "status":
            foreach (var s in KernelNbd.Status(options.UInt("--index")))
                Console.WriteLine($"{s.DevicePath} {(s.Connected ? "connected" : "free")}");
            return 0;
        case "detach":
            using (var client = IserBlockd.BlockDev.Kernel.Nbd.NbdNetlinkClient.Open())
                client.Disconnect(options.UInt("--index") ?? throw new ArgumentException("--index is required"));
            return 0;
        default:
            throw new ArgumentException($"unknown command '{args[0]}'");
    }
}
catch (Exception e) when (e is ArgumentException or KernelNbdException or IOException or UnauthorizedAccessException or TimeoutException
                              or IserBlockd.BlockDev.Kernel.Netlink.NetlinkException
                              or IserBlockd.BlockDev.Kernel.Netlink.NetlinkFamilyNotFoundException)
{
    Console.Error.WriteLine($"ibd-kernel-attach: {e.Message}");
    return 1;
}

static async Task<int> Serve(bool reattach, Options options)
{
    var backing = options.String("--backing") ?? throw new ArgumentException("--backing FILE is required");
    var size = options.Long("--size") ?? throw new ArgumentException("--size BYTES is required");
    var blockSize = (int)(options.Long("--block-size") ?? 512);
    // a file, so the data outlives the process (the re-attach test kills it and starts another)
    using var device = FileBlockDevice.Open(backing, new FileBlockDeviceOptions { Size = size, LogicalBlockSize = blockSize });
    var export = new NbdExport("", device);
    await using var server = new NbdServer();
    var request = KernelAttachRequest.For(device) with
    {
        Index = options.UInt("--index"),
        Connections = (int)(options.Long("--connections") ?? 1),
        IoTimeout = TimeSpan.FromSeconds(options.Long("--timeout") ?? 180),
        DeadConnectionTimeout = TimeSpan.FromSeconds(options.Long("--dead-conn-timeout") ?? 180),
        BackendIdentifier = options.String("--backend"),
        Method = Enum.Parse<KernelAttachMethod>(options.String("--method") ?? "auto", ignoreCase: true),
        ReplaceDeadConnections = options.String("--replace-dead-connections") is "yes",
    };

    using var stop = new CancellationTokenSource();
    using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
    using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

    Task ServeOne(System.Net.Sockets.Socket socket, CancellationToken ct) => server.ServeTransmissionAsync(socket, export, ct);
    var kernel = reattach
        ? await KernelNbd.ReattachAsync(request.Index ?? throw new ArgumentException("reattach needs --index"), request, ServeOne)
        : await KernelNbd.AttachAsync(request, ServeOne);
    kernel.ReplacementFailed += e => Console.Error.WriteLine($"ibd-kernel-attach: replacing a dead connection failed: {e.Message}");
    Console.WriteLine($"READY {kernel.DevicePath} method={kernel.Method} connections={kernel.LiveConnections}" +
                      (reattach ? " reattached" : ""));

    // serve until signalled; the device being disconnected by someone else also ends us
    try { await Task.WhenAny(kernel.Ended, Task.Delay(Timeout.Infinite, stop.Token)); }
    catch (OperationCanceledException) { }
    if (stop.IsCancellationRequested)
    {
        await kernel.DetachAsync(TimeSpan.FromSeconds(30));
        Console.WriteLine($"DETACHED {kernel.DevicePath} replaced={kernel.ReplacedConnections}");
    }
    else
    {
        await kernel.DisposeAsync();
        Console.WriteLine($"ENDED {kernel.DevicePath}: disconnected by someone else");
    }
    return 0;
}

/// <summary>"--name value" pairs.</summary>
internal sealed class Options(Dictionary<string, string> values)
{
    public static Options Parse(ReadOnlySpan<string> args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                throw new ArgumentException($"expected '--name value', got '{args[i]}'");
            values[args[i]] = args[i + 1];
        }
        return new Options(values);
    }

    public string? String(string name) => values.GetValueOrDefault(name);

    public long? Long(string name) => values.TryGetValue(name, out var v)
        ? long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"{name}: '{v}' is not a number")
        : null;

    public uint? UInt(string name) => Long(name) is { } n ? checked((uint)n) : null;
}
