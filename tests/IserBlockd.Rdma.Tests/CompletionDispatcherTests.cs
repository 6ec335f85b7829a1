using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma.Tests;

public sealed class CompletionDispatcherTests
{
    [Fact]
    public void Drains_in_batches_then_rearms_and_polls_once_more()
    {
        var table = new WorkRequestTable(8);
        var handler = new RecordingHandler();
        var id = table.Add(handler);
        var cq = new FakeCompletionQueue();
        for (var i = 0; i < 40; i++) cq.Add(id, byteLength: (uint)i);
        var dispatcher = new CompletionDispatcher(cq, table, batchSize: 16);

        Assert.Equal(40, dispatcher.DrainAndRearm());

        Assert.Equal(["poll(16)=16", "poll(16)=16", "poll(16)=8", "arm", "poll(16)=0"], cq.Calls);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => (uint)i), handler.Completions.Select(c => c.ByteLength));
        Assert.Equal(40, dispatcher.Completions);
    }

    [Fact]
    public void A_completion_that_lands_just_before_the_rearm_is_not_lost()
    {
        var table = new WorkRequestTable(8);
        var handler = new RecordingHandler();
        var id = table.Add(handler);
        var cq = new FakeCompletionQueue();
        cq.Add(id, byteLength: 1);
        // Arrives after the last empty poll but before the CQ is armed: it raises no notification.
        cq.BeforeArm = () => cq.Add(id, byteLength: 2);
        var dispatcher = new CompletionDispatcher(cq, table);

        Assert.Equal(2, dispatcher.DrainAndRearm());

        Assert.Equal([1u, 2u], handler.Completions.Select(c => c.ByteLength));
        // Found by the poll after arming, the dispatcher drains again and re-arms again before returning.
        Assert.Equal(["poll(16)=1", "arm", "poll(16)=1", "poll(16)=0", "arm", "poll(16)=0"], cq.Calls);
    }

    [Fact]
    public void Routes_each_completion_to_the_handler_its_wr_id_names()
    {
        var table = new WorkRequestTable(4);
        var send = new RecordingHandler();
        var receive = new RecordingHandler();
        var sendId = table.Add(send);
        var receiveId = table.Add(receive);
        var cq = new FakeCompletionQueue();
        cq.Add(sendId, opcode: IbvWcOpcode.Send);
        cq.Add(receiveId, opcode: IbvWcOpcode.Receive, byteLength: 76);
        cq.Add(sendId, opcode: IbvWcOpcode.RdmaRead);

        new CompletionDispatcher(cq, table).DrainAndRearm();

        Assert.Equal([IbvWcOpcode.Send, IbvWcOpcode.RdmaRead], send.Completions.Select(c => c.Opcode));
        var r = Assert.Single(receive.Completions);
        Assert.True(r.IsReceive);
        Assert.Equal(76u, r.ByteLength);
    }

    [Fact]
    public void Error_completions_reach_their_handler_with_the_status()
    {
        var table = new WorkRequestTable(2);
        var handler = new RecordingHandler();
        var id = table.Add(handler);
        var cq = new FakeCompletionQueue();
        cq.Add(id, IbvWcStatus.WorkRequestFlushError);
        new CompletionDispatcher(cq, table).DrainAndRearm();
        var wc = Assert.Single(handler.Completions);
        var e = Assert.Throws<WorkCompletionException>(() => WorkCompletionException.ThrowIfFailed(wc, "SEND of the login request"));
        Assert.Equal(IbvWcStatus.WorkRequestFlushError, e.Status);
        Assert.StartsWith("SEND of the login request failed: flushed: the queue pair went to the error state", e.Message);
    }

    [Fact]
    public void Stale_and_unknown_wr_ids_are_reported_not_delivered()
    {
        var table = new WorkRequestTable(1);
        var old = new RecordingHandler();
        var oldId = table.Add(old);
        Assert.True(table.Remove(oldId));
        var current = new RecordingHandler();
        var currentId = table.Add(current);
        Assert.NotEqual(oldId, currentId);
        Assert.Equal((uint)oldId, (uint)currentId); // same slot, new generation

        var cq = new FakeCompletionQueue();
        cq.Add(oldId, IbvWcStatus.WorkRequestFlushError);
        cq.Add(0xdead_beef_0000_0007);
        cq.Add(currentId);
        var dispatcher = new CompletionDispatcher(cq, table);
        var unknown = new List<ulong>();
        dispatcher.UnknownCompletion += wc => unknown.Add(wc.WorkRequestId);

        dispatcher.DrainAndRearm();

        Assert.Empty(old.Completions);
        Assert.Single(current.Completions);
        Assert.Equal([oldId, 0xdead_beef_0000_0007], unknown);
        Assert.Equal(2, dispatcher.UnknownCompletions);
    }

    [Fact]
    public void A_throwing_handler_does_not_lose_the_rest_of_the_batch()
    {
        var table = new WorkRequestTable(2);
        var bad = new RecordingHandler { OnCompletion = _ => throw new InvalidOperationException("boom") };
        var good = new RecordingHandler();
        var badId = table.Add(bad);
        var goodId = table.Add(good);
        var cq = new FakeCompletionQueue();
        cq.Add(badId);
        cq.Add(goodId);
        var dispatcher = new CompletionDispatcher(cq, table);
        var failures = new List<string>();
        dispatcher.HandlerFailed += (_, e) => failures.Add(e.Message);

        Assert.Equal(2, dispatcher.DrainAndRearm());
        Assert.Single(good.Completions);
        Assert.Equal(["boom"], failures);
    }

    [Fact]
    public void Work_request_table_refuses_more_than_its_capacity()
    {
        var table = new WorkRequestTable(2);
        table.Add(new CountingHandler());
        table.Add(new CountingHandler());
        var e = Assert.Throws<InvalidOperationException>(() => table.Add(new CountingHandler()));
        Assert.Contains("All 2 work request slots are in use", e.Message);
        Assert.False(table.Remove(12345));
        Assert.Equal(2, table.Count);
    }

    [Fact]
    public void Dispatching_allocates_nothing()
    {
        var table = new WorkRequestTable(64);
        var handlers = Enumerable.Range(0, 64).Select(_ => new CountingHandler()).ToArray();
        var ids = handlers.Select(table.Add).ToArray();
        var cq = new FakeCompletionQueue { LogCalls = false };
        var dispatcher = new CompletionDispatcher(cq, table, batchSize: 32);
        for (var i = 0; i < 64; i++) cq.Add(ids[i]);
        dispatcher.DrainAndRearm(); // warm up

        for (var i = 0; i < 1000; i++) cq.Add(ids[i % 64]);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var n = dispatcher.DrainAndRearm();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(1000, n);
        Assert.Equal(0, allocated);
        Assert.Equal(1064, handlers.Sum(h => h.Count));
    }

    [Fact]
    public async Task On_the_event_loop_a_notification_drains_the_queue_and_wakes_the_waiter()
    {
        using var loop = new RdmaEventLoop("test-cq-loop");
        using var notification = new TestEventFd();
        var table = new WorkRequestTable(4);
        var completion = new AsyncWorkCompletion().Register(table);
        var cq = new FakeCompletionQueue(notification.Fd) { OnConsumeEvents = notification.Drain };
        using var dispatcher = new CompletionDispatcher(cq, table);
        dispatcher.Start(loop);
        Assert.Equal(1, cq.Armed);

        for (var round = 1; round <= 3; round++)
        {
            completion.Reset();
            var wait = completion.WaitAsync();
            cq.Add(completion.WorkRequestId, opcode: IbvWcOpcode.Receive, byteLength: (uint)round);
            notification.Signal();
            var wc = await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal((uint)round, wc.ByteLength);
        }
        // The waiter wakes mid-dispatch; the loop re-arms right after.
        Assert.True(SpinWait.SpinUntil(() => cq.Armed == 4, TimeSpan.FromSeconds(5)), $"armed {cq.Armed} times");
        Assert.Equal(3, cq.EventsConsumed);
    }

    [Fact]
    public async Task Completions_posted_before_start_are_dispatched_by_start()
    {
        using var loop = new RdmaEventLoop("test-cq-loop");
        using var notification = new TestEventFd();
        var table = new WorkRequestTable(4);
        var handler = new RecordingHandler();
        var id = table.Add(handler);
        var cq = new FakeCompletionQueue(notification.Fd) { OnConsumeEvents = notification.Drain };
        cq.Add(id);
        using var dispatcher = new CompletionDispatcher(cq, table);
        dispatcher.Start(loop);
        Assert.Single(handler.Completions);
        await Task.CompletedTask;
    }

    [Fact]
    public void A_failing_queue_is_reported_once_and_no_longer_watched()
    {
        using var loop = new RdmaEventLoop("test-cq-loop");
        using var notification = new TestEventFd();
        var table = new WorkRequestTable(2);
        var cq = new FakeCompletionQueue(notification.Fd) { OnConsumeEvents = notification.Drain };
        using var dispatcher = new CompletionDispatcher(cq, table);
        var failures = new List<Exception>();
        var failed = new ManualResetEventSlim();
        dispatcher.QueueFailed += e => { failures.Add(e); failed.Set(); };
        dispatcher.Start(loop);

        cq.PollFailure = new RdmaException("ibv_poll_cq failed (-22): the completion queue is in an error state (overrun?)", 22);
        notification.Signal();
        Assert.True(failed.Wait(TimeSpan.FromSeconds(5)));
        notification.Signal();
        Thread.Sleep(100);
        Assert.Equal("ibv_poll_cq failed (-22): the completion queue is in an error state (overrun?)", Assert.Single(failures).Message);
    }

    [Fact]
    public async Task Handlers_never_run_on_two_threads_at_once()
    {
        var table = new WorkRequestTable(1);
        var inside = 0;
        var overlaps = 0;
        var handler = new RecordingHandler
        {
            OnCompletion = _ =>
            {
                if (Interlocked.Increment(ref inside) > 1) Interlocked.Increment(ref overlaps);
                Thread.SpinWait(2000);
                Interlocked.Decrement(ref inside);
            },
        };
        var id = table.Add(handler);
        var cq = new FakeCompletionQueue { LogCalls = false };
        var dispatcher = new CompletionDispatcher(cq, table, batchSize: 4);
        for (var i = 0; i < 2000; i++) cq.Add(id);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => { while (dispatcher.DrainAndRearm() > 0) { } })));
        Assert.Equal(0, overlaps);
        Assert.Equal(2000, handler.Completions.Count);
    }
}
