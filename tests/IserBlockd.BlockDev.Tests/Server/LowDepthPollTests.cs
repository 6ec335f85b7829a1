using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Tests.Support;
using IserBlockd.Primitives.Polling;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>
/// The NBD server's side of the poll at queue depth one: a connection's socket is watched while it serves, the
/// reader polls after starting the one request in flight and the writer after its last reply, every request is counted
/// in flight until its reply is gone (a miscount would stop the polling for good, or let it run at depth), and the data
/// is the same whether the thread polled or slept.
/// </summary>
public class LowDepthPollTests(ITestOutputHelper output)
{
    private const long Size = 16 << 20;

    [Fact]
    public async Task One_request_at_a_time_is_polled_for_and_answered_with_its_own_data()
    {
        var data = new byte[Size];
        Random.Shared.NextBytes(data);
        var device = new MemoryBlockDevice(Size);
        await device.WriteAsync(0, data, fua: false, default);
        // Long enough that every poll is ended by the client's next request, not by the budget.
        var poller = new LowDepthPoller(TimeSpan.FromSeconds(5));
        await using var server = new InProcessNbdServer(output, new NbdServerOptions { LowDepthPoller = poller }, new NbdExport("", device));
        using var client = server.Connect();

        for (var i = 0; i < 200; i++)
        {
            var offset = Random.Shared.Next(0, (int)(Size / 4096)) * 4096L;
            var length = i % 10 == 9 ? 1 << 20 : 4096; // now and then a READ large enough to leave by page reference
            offset = Math.Min(offset, Size - length);
            var reply = client.ReadSync((ulong)offset, (uint)length);
            Assert.Equal(0u, reply.Error);
            Assert.True(data.AsSpan((int)offset, length).SequenceEqual(reply.Data), $"read {i} ({length} bytes at {offset}) carries other data");
            var write = new byte[4096];
            Random.Shared.NextBytes(write);
            Assert.Equal(0u, client.WriteSync((ulong)offset, write).Error);
            write.CopyTo(data, offset);
        }
        // Between one reply and the next request the writer polled, and the request ended the poll.
        Assert.True(poller.Hits >= 100, $"{poller.Hits} polls ended by a request, {poller.Misses} ran out");
        Assert.Equal(0, poller.Misses);

        client.Disconnect();
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, poller.InFlight);
    }

    [Fact]
    public async Task Requests_in_flight_together_are_not_polled_for_and_all_are_counted_out_at_the_end()
    {
        var release = new TaskCompletionSource();
        var device = new ControlledDevice(new MemoryBlockDevice(Size)) { Gate = (op, _) => op == DeviceOperation.Read ? release.Task : null };
        // A poll would end only by its budget here (nothing more comes): short, so that one would be over and counted
        // well before the check below.
        var poller = new LowDepthPoller(TimeSpan.FromMilliseconds(20));
        await using var server = new InProcessNbdServer(output, new NbdServerOptions { LowDepthPoller = poller }, new NbdExport("", device));
        using var client = server.Connect();

        var handles = client.ReadMany([.. Enumerable.Range(0, 16).Select(i => (ulong)i * 4096)], 4096);
        try
        {
            while (device.Events.Count < 16) await Task.Delay(5);
            Assert.Equal(16, poller.InFlight);
            await Task.Delay(200);
            // Sixteen in flight: the thread went to sleep without polling.
            Assert.Equal(0, poller.Hits + poller.Misses);
        }
        catch
        {
            release.TrySetResult(); // lets the server end
            throw;
        }

        // The client goes away with all of them unanswered: each is still counted out once the device is done.
        client.Disconnect();
        release.TrySetResult();
        var answered = new List<ulong>();
        for (var i = 0; i < 16; i++) answered.Add(client.ReadReply().Handle);
        Assert.Equal(handles.Order(), answered.Order());
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
        for (var i = 0; i < 100 && poller.InFlight != 0; i++) await Task.Delay(10);
        Assert.Equal(0, poller.InFlight);
    }
}
