using System.Diagnostics;
using System.Net;
using IserBlockd.Rdma;
using IserBlockd.RdmaProbe;

ProbeOptions options;
try
{
    options = ProbeOptions.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

var total = Stopwatch.StartNew();
try
{
    var rc = options.Command switch
    {
        "devices" => Devices(),
        "reach" => await Reach(options),
        "server" when options.WriteBandwidth => await WriteBandwidth.ServeAsync(options),
        "client" when options.WriteBandwidth => await WriteBandwidth.RunAsync(options),
        "server" => await RpingServer.RunAsync(options),
        "windows" => await WindowScope.RunAsync(options),
        "sessions" => await SessionScope.RunAsync(options),
        "client" => await RpingClient.RunAsync(options),
        _ => 2,
    };
    if (rc == 0 && options.Command is "server" or "client" or "windows" or "sessions") CheckTeardown(options);
    Console.WriteLine(rc == 0 ? $"{options.Command}: OK in {total.Elapsed.TotalSeconds:F2} s" : $"{options.Command}: exit {rc}");
    return rc;
}
catch (Exception e)
{
    Console.Error.WriteLine($"{options.Command} failed: {e.GetType().Name}: {e.Message}");
    Console.Error.WriteLine(e.StackTrace);
    return 1;
}

static int Devices()
{
    var availability = RdmaDevices.Probe();
    Console.WriteLine(availability.Reason);
    if (!availability.IsAvailable) return 3;
    using var list = RdmaDevices.Open();
    foreach (var device in list.Devices)
    {
        var l = device.QueryLimits();
        Console.WriteLine($"  {device.DeviceName}: max_qp_wr {l.MaxQueuePairWorkRequests}, max_sge {l.MaxScatterGather}, max_cqe {l.MaxCompletionQueueEntries}, " +
            $"max_qp_rd_atom {l.MaxQpReadAtomic}, max_qp_init_rd_atom {l.MaxQpInitiatorReadAtomic}, max_mr_size {l.MaxMemoryRegionSize}");
    }
    return 0;
}

static async Task<int> Reach(ProbeOptions options)
{
    var check = await RdmaReachability.CheckAsync(new IPEndPoint(options.Address, options.Port), TimeSpan.FromSeconds(3));
    Console.WriteLine($"reachable={check.IsReachable} device={check.DeviceName ?? "-"}: {check.Reason}");
    return check.IsReachable ? 0 : 3;
}

static void CheckTeardown(ProbeOptions options)
{
    // Everything is disposed: no handle may be left, and (asked of the kernel) no object either.
    var live = RdmaDiagnostics.LiveNativeObjects;
    Console.WriteLine($"native objects still owned after teardown: {live}");
    if (live != 0) throw new InvalidOperationException($"{live} rdma-core objects were not released");
    if (options.CheckKernelResources) KernelResources.ExpectNone();
}
