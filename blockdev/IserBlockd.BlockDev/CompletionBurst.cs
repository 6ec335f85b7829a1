namespace IserBlockd.BlockDev;

/// <summary>
/// Completions a device delivers together, one after another on one thread (an iSCSI receive loop handling every
/// response one network receive brought): while a burst is open on a thread, the NBD reply writers woken on that
/// thread start only when it ends, so the replies of the whole burst leave in one send instead of one send each.
/// </summary>
/// <remarks>A burst never spans a wait: <see cref="Begin"/> and <see cref="End"/> are called on the same thread with
/// only synchronous work between them, so a deferred reply waits for that work and nothing else. Bursts nest.</remarks>
public static class CompletionBurst
{
    [ThreadStatic] private static int t_depth;
    [ThreadStatic] private static List<Action>? t_deferred;

    public static void Begin() => t_depth++;

    /// <summary>Ends the burst; the outermost end runs what was deferred, in order, on this thread.</summary>
    public static void End()
    {
        if (t_depth == 0 || --t_depth > 0) return;
        var deferred = t_deferred;
        if (deferred == null) return;
        for (var i = 0; i < deferred.Count; i++) deferred[i]();
        deferred.Clear();
    }

    /// <summary>Defers <paramref name="wake"/> to the end of this thread's burst; false (and nothing deferred) outside one.</summary>
    internal static bool TryDefer(Action wake)
    {
        if (t_depth == 0) return false;
        (t_deferred ??= new List<Action>(16)).Add(wake);
        return true;
    }
}
