using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Tests.Support;
using IserBlockd.Primitives.Native;
using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>
/// Coalescing on the NBD side: requests that arrive together start inside one device burst
/// (<see cref="IBlockDevice.BeginBurst"/>), and replies completed inside a <see cref="CompletionBurst"/> leave
/// together when it ends, not one send each.
/// </summary>
public class BurstTests(ITestOutputHelper output)
{
    private const long Size = 32 << 20;
    private const int Requests = 8;
    private const int Length = 4096;

    [Fact]
    public async Task Replies_completed_in_one_burst_leave_together_when_it_ends()
    {
        // One gate per read, each with one continuation, which runs inline on the thread that opens the gate.
        var gates = Enumerable.Range(0, Requests).Select(_ => new TaskCompletionSource()).ToArray();
        var device = new ControlledDevice(new MemoryBlockDevice(Size)) { Gate = (op, offset) => op == DeviceOperation.Read ? gates[offset / Length].Task : null };
        var data = Enumerable.Range(0, Requests * Length).Select(i => (byte)(i * 13 + 1)).ToArray();
        device.Inner.Write(0, data);
        await using var server = new NbdServer(null, new TestLoggerFactory(output));
        var (kernelEnd, serverEnd) = SocketPair.Create();
        var serving = server.ServeTransmissionAsync(serverEnd, new NbdExport("", device));
        using var client = RawNbdClient.ForTransmission(kernelEnd, (ulong)Size);

        var handles = Enumerable.Range(0, Requests).Select(i => client.Read((ulong)(i * Length), Length)).ToArray();
        // Every read is at the device and the reader waits for the socket again (its own burst is over).
        await Wait.Until(() => device.Events.Count == Requests && Volatile.Read(ref device.BurstsEnded) == Volatile.Read(ref device.BurstsBegun),
            "every read at the device, the reader waiting");
        Assert.Equal(Requests, device.StartedInBurst);

        CompletionBurst.Begin();
        foreach (var gate in gates) gate.SetResult(); // all reads complete here, inside the burst
        Assert.Equal(0, kernelEnd.Available);
        CompletionBurst.End(); // the writer runs now, on this thread: one gathered send
        // Normally all of it is there at once; a send the socket does not take whole goes on through the runtime's
        // engine, so wait for the rest rather than race it (seen under a loaded full-suite run).
        await Wait.Until(() => kernelEnd.Available == Requests * (16 + Length), "every reply sent once the burst ended");

        // Replies leave in the order the reads finished, which is the gates' order only when every gate's continuation
        // ran inline (a CI run once saw 0, 3, ...): match each reply to its read by handle.
        var index = handles.Select((handle, i) => (handle, i)).ToDictionary(x => x.handle, x => x.i);
        for (var n = 0; n < Requests; n++)
        {
            var reply = client.ReadReply();
            Assert.Equal(0u, reply.Error);
            Assert.True(index.Remove(reply.Handle, out var i), $"reply for an unknown or repeated handle {reply.Handle}");
            Assert.Equal(data.AsSpan(i * Length, Length).ToArray(), reply.Data);
        }
        Assert.Empty(index);
        client.Disconnect();
        await serving.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(device.BurstsBegun, device.BurstsEnded);
    }

    [Fact]
    public void Deferred_work_runs_at_the_outermost_end_and_never_outside_a_burst()
    {
        var ran = 0;
        Action work = () => ran++;
        Assert.False(CompletionBurst.TryDefer(work));
        CompletionBurst.Begin();
        CompletionBurst.Begin();
        Assert.True(CompletionBurst.TryDefer(work));
        CompletionBurst.End();
        Assert.Equal(0, ran);
        CompletionBurst.End();
        Assert.Equal(1, ran);
        CompletionBurst.End(); // an unmatched end is ignored
        Assert.False(CompletionBurst.TryDefer(work));
        Assert.Equal(1, ran);
    }
}
