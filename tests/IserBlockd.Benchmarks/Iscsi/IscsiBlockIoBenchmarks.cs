using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using IserBlockd.BlockDev;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Sessions;

namespace IserBlockd.Benchmarks.Iscsi;

/// <summary>
/// The initiator's block I/O path — <see cref="ScsiLun.ReadAsync"/>/<see cref="ScsiLun.WriteAsync"/>, the session's
/// pooled tasks, CmdSN window and ITT table, the writer and receive loops, the PDU codec — on a session logged in over
/// <see cref="InMemoryIscsiTransport"/> to <see cref="MemoryDiskTarget"/>: 4 KiB READ(10) answered by one Data-In
/// carrying the status, 4 KiB WRITE(16) sent as immediate data and answered by a SCSI Response. One I/O at a time
/// (each issued from the completion of the previous one) and 32 in flight. MemoryDiagnoser counts every thread's
/// allocations (receive loop and target included), per I/O; it must be 0 B (or "-").
/// Run: dotnet run -c Release --project tests/IserBlockd.Benchmarks -- --filter '*IscsiBlockIo*'
/// </summary>
[Config(typeof(IscsiBlockIoConfig))]
[MemoryDiagnoser]
public class IscsiBlockIoBenchmarks
{
    private const int IoSize = 4096;
    private const int BlockSize = 512;
    private const int MaxQueueDepth = 32;
    internal const int IosPerInvoke = 256;

    private IscsiSession _session = null!;
    private BlockIoDriver _driver = null!;

    [Params(1, MaxQueueDepth)]
    public int QueueDepth { get; set; }

    [GlobalSetup]
    public async Task Setup()
    {
        var disk = new byte[16 << 20];
        _session = await IscsiSession.LoginAsync(new InMemoryIscsiTransport(disk, BlockSize), new IscsiSessionOptions
        {
            Portals = [new IscsiPortal("memory")],
            TargetName = MemoryDiskTarget.Name,
            InitiatorName = "iqn.2026-11.io.iserblockd.bench:initiator",
            ReceiveBursts = CompletionBursts.Instance, // as the daemon wires it
        });
        var lun = await _session.OpenLunAsync(1);
        await CheckRoundTripAsync(lun);
        _driver = new BlockIoDriver(lun, MaxQueueDepth, IoSize);
    }

    /// <summary>A benchmark of a path that loses data would measure nothing: a pattern must come back as written.</summary>
    private static async Task CheckRoundTripAsync(ScsiLun lun)
    {
        var written = new byte[IoSize];
        Random.Shared.NextBytes(written);
        await lun.WriteAsync(8, written);
        var read = new byte[IoSize];
        await lun.ReadAsync(8, read);
        if (!read.AsSpan().SequenceEqual(written)) throw new InvalidOperationException("the block read back differs from the block written");
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        _driver.Stop();
        await _session.LogoutAsync();
        await _session.DisposeAsync();
    }

    [Benchmark(OperationsPerInvoke = IosPerInvoke, Description = "4 KiB READ")]
    public void Read4K() => _driver.Run(write: false, QueueDepth, IosPerInvoke);

    [Benchmark(OperationsPerInvoke = IosPerInvoke, Description = "4 KiB WRITE")]
    public void Write4K() => _driver.Run(write: true, QueueDepth, IosPerInvoke);
}

/// <summary>Receive bursts reported to blockdev's <see cref="CompletionBurst"/>, as the daemon does.</summary>
internal sealed class CompletionBursts : IReceiveBurstObserver
{
    public static readonly CompletionBursts Instance = new();
    public void BurstStarted() => CompletionBurst.Begin();
    public void BurstEnded() => CompletionBurst.End();
}

/// <summary>Short runs: the figure that matters here is Allocated.</summary>
public sealed class IscsiBlockIoConfig : ManualConfig
{
    public IscsiBlockIoConfig()
    {
        AddJob(Job.Default.WithWarmupCount(3).WithIterationCount(10).WithLaunchCount(1).WithId("short"));
        AddDiagnoser(MemoryDiagnoser.Default);
    }
}
