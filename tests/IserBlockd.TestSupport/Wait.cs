namespace IserBlockd.TestSupport;

/// <summary>
/// Waiting for a condition that no signal announces (a counter in the code under test, a file, a peer's state):
/// polls it until true, and fails the test with <paramref name="what"/> past a deadline generous enough for a
/// loaded machine.
/// </summary>
public static class Wait
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    public static Task Until(Func<bool> condition, string what = "the condition", TimeSpan? timeout = null) =>
        Until(() => Task.FromResult(condition()), what, timeout);

    public static async Task Until(Func<Task<bool>> condition, string what = "the condition", TimeSpan? timeout = null)
    {
        var limit = timeout ?? DefaultTimeout;
        var deadline = DateTime.UtcNow + limit;
        var pause = TimeSpan.FromMilliseconds(5);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{what} was not met within {limit.TotalSeconds:0.#} s");
            await Task.Delay(pause);
            if (pause < TimeSpan.FromMilliseconds(100)) pause *= 2;
        }
    }

    /// <summary>Polls <paramref name="find"/> until it returns a value, and returns it.</summary>
    public static async Task<T> For<T>(Func<T?> find, string what, TimeSpan? timeout = null) where T : class
    {
        T? found = null;
        await Until(() => (found = find()) != null, what, timeout);
        return found!;
    }
}
