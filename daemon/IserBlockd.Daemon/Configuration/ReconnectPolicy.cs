namespace IserBlockd.Daemon.Configuration;

/// <summary>Delays between reconnect attempts: <see cref="MinDelay"/> first, doubling up to <see cref="MaxDelay"/>.</summary>
public sealed record ReconnectPolicy(TimeSpan MinDelay, TimeSpan MaxDelay)
{
    public static ReconnectPolicy Default { get; } = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));

    /// <summary>The delay before attempt <paramref name="attempt"/> (0 = the first retry).</summary>
    public TimeSpan DelayFor(int attempt)
    {
        var ticks = MinDelay.Ticks * Math.Pow(2, Math.Min(attempt, 30));
        return ticks >= MaxDelay.Ticks ? MaxDelay : TimeSpan.FromTicks((long)ticks);
    }
}
