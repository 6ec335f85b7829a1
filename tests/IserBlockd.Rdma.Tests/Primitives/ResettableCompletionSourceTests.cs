using IserBlockd.Primitives.Async;

namespace IserBlockd.Rdma.Tests.Primitives;

/// <summary>The contract of the one reusable awaitable every library's waits are built on.</summary>
public sealed class ResettableCompletionSourceTests
{
    [Fact]
    public void A_result_set_before_the_wait_completes_it_at_once()
    {
        var source = new ResettableCompletionSource<int>(runContinuationsAsynchronously: false);
        Assert.True(source.TrySetResult(7));

        var wait = source.WaitAsync();

        Assert.True(wait.IsCompletedSuccessfully);
        Assert.Equal(7, wait.Result);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_result_set_after_the_wait_resumes_the_waiter_inline_or_on_the_thread_pool_as_chosen(bool asynchronously)
    {
        var source = new ResettableCompletionSource<int>(asynchronously);
        var resumedOn = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var waiter = Waiter();
        Assert.False(waiter.IsCompleted);

        var completer = new Thread(() => source.SetResult(42));
        completer.Start();
        completer.Join();

        Assert.Equal(42, await waiter.WaitAsync(TimeSpan.FromSeconds(30)));
        var sameThread = await resumedOn.Task == completer.ManagedThreadId;
        Assert.Equal(!asynchronously, sameThread);

        async Task<int> Waiter()
        {
            var result = await source.WaitAsync().ConfigureAwait(false); // no test framework context: inline means inline
            resumedOn.SetResult(Environment.CurrentManagedThreadId);
            return result;
        }
    }

    [Fact]
    public void Reset_starts_a_new_version_and_an_older_wait_is_stale()
    {
        var source = new ResettableCompletionSource<int>(runContinuationsAsynchronously: false);
        var versions = new HashSet<short>();
        ValueTask<int> first = default;
        for (var round = 0; round < 3; round++)
        {
            source.Reset();
            Assert.True(versions.Add(source.Version));
            var wait = source.WaitAsync();
            if (round == 0) first = wait;
            Assert.False(source.IsCompleted);
            source.SetResult(round);
            Assert.True(source.IsCompleted);
            if (round > 0) Assert.Equal(round, wait.Result);
        }

        Assert.Throws<InvalidOperationException>(() => first.Result);
    }

    [Fact]
    public void Reset_when_consumed_lets_the_next_result_come_before_the_next_wait()
    {
        var source = new CountingSource(resetWhenConsumed: true);

        source.SetResult(1);
        Assert.Equal(1, source.WaitAsync().Result);
        Assert.False(source.IsCompleted);
        source.SetResult(2);
        Assert.Equal(2, source.WaitAsync().Result);

        Assert.Equal(2, source.Consumed);
    }

    [Fact]
    public void Taking_the_result_of_a_pending_or_stale_version_throws_and_releases_nothing()
    {
        var source = new CountingSource(resetWhenConsumed: false);
        var version = source.Version;

        Assert.Throws<InvalidOperationException>(() => source.GetResult(version));
        source.SetResult(5);
        Assert.Throws<InvalidOperationException>(() => source.GetResult((short)(version + 1)));
        Assert.Equal(0, source.Consumed);

        Assert.Equal(5, source.GetResult(version));
        Assert.Equal(1, source.Consumed);
    }

    [Fact]
    public void The_first_completion_wins_and_a_second_one_is_refused()
    {
        var source = new ResettableCompletionSource<int>(runContinuationsAsynchronously: false);

        Assert.True(source.TrySetResult(1));
        Assert.False(source.TrySetResult(2));
        Assert.False(source.TrySetException(new IOException()));
        Assert.False(source.TrySetCanceled());
        Assert.Throws<InvalidOperationException>(() => source.SetResult(3));
        Assert.Throws<InvalidOperationException>(() => source.SetException(new IOException()));
        Assert.Equal(1, source.WaitAsync().Result);
    }

    [Fact]
    public async Task An_exception_reaches_the_waiter_as_it_was_set()
    {
        var source = new ResettableCompletionSource<int>(runContinuationsAsynchronously: true);
        var wait = source.WaitCompletionAsync();
        var error = new IOException("link down");

        Assert.True(source.TrySetException(error));

        Assert.Same(error, await Assert.ThrowsAsync<IOException>(() => wait.AsTask()));
    }

    [Fact]
    public async Task Cancellation_before_a_result_ends_the_wait_and_the_late_result_is_refused()
    {
        var source = new ResettableCompletionSource<int>(runContinuationsAsynchronously: true);
        using var cts = new CancellationTokenSource();
        var wait = source.WaitAsync(cts.Token);

        cts.Cancel();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.AsTask());
        Assert.Equal(cts.Token, error.CancellationToken);
        Assert.False(source.TrySetResult(1));
    }

    [Fact]
    public void A_token_already_cancelled_completes_the_wait_at_once()
    {
        var source = new ResettableCompletionSource<int>(runContinuationsAsynchronously: false);

        var wait = source.WaitCompletionAsync(new CancellationToken(canceled: true));

        Assert.True(wait.IsCanceled);
    }

    [Fact]
    public void A_result_set_first_wins_over_a_later_cancellation()
    {
        var source = new ResettableCompletionSource<int>(runContinuationsAsynchronously: false);
        using var cts = new CancellationTokenSource();
        var wait = source.WaitAsync(cts.Token);

        source.SetResult(9);
        cts.Cancel();

        Assert.Equal(9, wait.Result);
    }

    [Fact]
    public async Task Cancellation_racing_a_result_gives_exactly_one_outcome_and_the_source_stays_reusable()
    {
        var source = new ResettableCompletionSource<int>(runContinuationsAsynchronously: true);
        for (var round = 0; round < 2000; round++)
        {
            source.Reset();
            using var cts = new CancellationTokenSource();
            var wait = source.WaitAsync(cts.Token).AsTask();
            using var start = new Barrier(2);
            var cancel = Task.Run(() => { start.SignalAndWait(); cts.Cancel(); });
            var complete = Task.Run(() => { start.SignalAndWait(); return source.TrySetResult(round); });

            var resultWon = await complete;
            await cancel;
            if (resultWon) Assert.Equal(round, await wait);
            else await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
        }
    }

    [Fact]
    public void Reuse_allocates_nothing()
    {
        var source = new ResettableCompletionSource<int>(runContinuationsAsynchronously: false);
        Cycle(); // first use: JIT

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++) Cycle();

        Assert.Equal(0L, GC.GetAllocatedBytesForCurrentThread() - before);

        void Cycle()
        {
            source.Reset();
            var wait = source.WaitAsync();
            source.SetResult(1);
            _ = wait.Result;
        }
    }

    private sealed class CountingSource(bool resetWhenConsumed)
        : ResettableCompletionSource<int>(runContinuationsAsynchronously: false, resetWhenConsumed)
    {
        public int Consumed;

        protected override void OnConsumed() => Consumed++;
    }
}
