using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>
/// Steady-state block I/O allocates (almost) nothing per command: pooled task objects, pooled async state machines,
/// reused PDU buffers. Measured over the whole process while 32 workers read and write 4 KiB blocks from tgtd.
/// </summary>
[Trait("Category", "RealPeer")]
[Collection(IscsiCommandAllocationMeasurement.Name)]
public sealed class IscsiCommandAllocationTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Steady_state_io_allocates_almost_nothing()
    {
        await using var bed = await TgtdTestBed.StartAsync(output);
        await using var session = await IserBlockd.Iscsi.Sessions.IscsiSession.LoginAsync(new IserBlockd.Transport.Tcp.TcpIscsiTransport(), bed.Options());
        var lun = await session.OpenLunAsync(1);
        const int workers = 32;
        var buffers = Enumerable.Range(0, workers).Select(_ => new byte[4096]).ToArray();

        async Task Work(int worker, int count)
        {
            var buffer = buffers[worker];
            for (var i = 0; i < count; i++)
            {
                var lba = (ulong)((worker * 977 + i * 8) % 100_000);
                if ((i & 1) == 0) await lun.ReadAsync(lba, buffer);
                else await lun.WriteAsync(lba, buffer);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Work(w, 200)));
        const int perWorker = 1000;
        using var probe = new AllocationProbe();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Work(w, perWorker)));
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        output.WriteLine("sampled allocations by type:\n" + probe.Top(10));
        var perCommand = (double)allocated / (workers * perWorker);
        output.WriteLine($"{allocated} bytes over {workers * perWorker} commands: {perCommand:F1} bytes per command");
#if DEBUG
        // Debug builds compile async state machines as classes, so only a Release build measures the design.
        output.WriteLine("Debug build: the figure includes the compiler's per-call state machine objects; run with -c Release");
#else
        // The driver's own Task.WhenAll and the thread pool's bookkeeping are included; a per-command object
        // (a Task, a boxed state machine, a PDU buffer) would be 100+ bytes.
        Assert.True(perCommand < 24, $"{perCommand:F1} bytes allocated per command");
#endif
    }
}

/// <summary>Allocation is measured for the whole process: nothing else may run meanwhile.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class IscsiCommandAllocationMeasurement
{
    public const string Name = "allocation measurement";
}
