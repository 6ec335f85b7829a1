using IserBlockd.Primitives.Native;
namespace IserBlockd.Rdma.Tests;

public sealed class RdmaEventLoopTests
{
    private sealed class Handler(TestEventFd fd, Action? onReadable = null) : IReadableHandler
    {
        public int Calls;
        public int Drained;

        public void OnReadable()
        {
            Interlocked.Increment(ref Calls);
            Interlocked.Add(ref Drained, fd.Drain());
            onReadable?.Invoke();
        }
    }

    [Fact]
    public void Runs_the_handler_on_its_own_thread_when_the_descriptor_is_readable()
    {
        using var loop = new RdmaEventLoop("test-loop");
        using var fd = new TestEventFd();
        var ran = new ManualResetEventSlim();
        var onLoopThread = false;
        var handler = new Handler(fd, () => { onLoopThread = loop.IsLoopThread; ran.Set(); });
        using var registration = loop.Register(fd.Fd, handler, "test eventfd");

        fd.Signal();
        fd.Signal();
        Assert.True(ran.Wait(TimeSpan.FromSeconds(5)));
        Assert.True(onLoopThread);
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref handler.Drained) == 2, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void After_unregistering_the_handler_never_runs_again()
    {
        using var loop = new RdmaEventLoop("test-loop");
        using var fd = new TestEventFd();
        var handler = new Handler(fd);
        var registration = loop.Register(fd.Fd, handler, "test eventfd");
        fd.Signal();
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref handler.Calls) == 1, TimeSpan.FromSeconds(5)));

        registration.Dispose();
        var calls = Volatile.Read(ref handler.Calls);
        fd.Signal();
        Thread.Sleep(100);
        Assert.Equal(calls, Volatile.Read(ref handler.Calls));
    }

    [Fact]
    public void A_throwing_handler_is_reported_and_the_loop_carries_on()
    {
        using var loop = new RdmaEventLoop("test-loop");
        var failures = new List<Exception>();
        loop.HandlerFailed += e => { lock (failures) failures.Add(e); };
        using var badFd = new TestEventFd();
        using var goodFd = new TestEventFd();
        var good = new ManualResetEventSlim();
        using var r1 = loop.Register(badFd.Fd, new Handler(badFd, () => throw new InvalidOperationException("handler bug")), "bad");
        using var r2 = loop.Register(goodFd.Fd, new Handler(goodFd, good.Set), "good");

        badFd.Signal();
        Assert.True(SpinWait.SpinUntil(() => { lock (failures) return failures.Count == 1; }, TimeSpan.FromSeconds(5)));
        goodFd.Signal();
        Assert.True(good.Wait(TimeSpan.FromSeconds(5)));
        lock (failures) Assert.Equal("handler bug", Assert.Single(failures).Message);
    }

    [Fact]
    public void Unregistering_from_inside_the_handler_works()
    {
        using var loop = new RdmaEventLoop("test-loop");
        using var fd = new TestEventFd();
        IDisposable? registration = null;
        var done = new ManualResetEventSlim();
        registration = loop.Register(fd.Fd, new Handler(fd, () => { registration!.Dispose(); done.Set(); }), "self-removing");
        fd.Signal();
        Assert.True(done.Wait(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void Registering_a_closed_descriptor_fails_clearly()
    {
        using var loop = new RdmaEventLoop("test-loop");
        using var unused = new TestEventFd();
        var e = Assert.Throws<RdmaException>(() => loop.Register(987654, new Handler(unused), "bogus"));
        Assert.Equal("fcntl(O_NONBLOCK) on the bogus descriptor failed: EBADF: Bad file descriptor", e.Message);
        Assert.Equal(Errno.EBADF, e.ErrorCode);
    }

    [Fact]
    public void Many_registrations_grow_the_table()
    {
        using var loop = new RdmaEventLoop("test-loop");
        var fds = Enumerable.Range(0, 40).Select(_ => new TestEventFd()).ToList();
        var handlers = fds.Select(f => new Handler(f)).ToList();
        var registrations = fds.Select((f, i) => loop.Register(f.Fd, handlers[i], $"fd{i}")).ToList();
        foreach (var f in fds) f.Signal();
        Assert.True(SpinWait.SpinUntil(() => handlers.All(h => Volatile.Read(ref h.Drained) == 1), TimeSpan.FromSeconds(5)));
        foreach (var r in registrations) r.Dispose();
        foreach (var f in fds) f.Dispose();
    }
}
