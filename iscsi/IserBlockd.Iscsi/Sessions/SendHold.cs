namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// Holding the writer while a caller issues several commands in a row, so that they leave in one send (one system
/// call, one TCP segment train) instead of one send each: the writer otherwise runs inline on the thread of every
/// command and sends it at once. Holds nest; the last release wakes the writer if a command came meanwhile.
/// </summary>
/// <remarks>A hold must never span a wait (release before awaiting anything), so a held command waits only for the
/// caller's own synchronous work.</remarks>
internal sealed class SendHold(Action wakeWriter)
{
    private int _holds;
    private int _deferred;

    public void Hold() => Interlocked.Increment(ref _holds);

    /// <summary>Ends a <see cref="Hold"/>; the last one wakes the writer for what the holds kept back, on this thread.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _holds) == 0 && Interlocked.Exchange(ref _deferred, 0) != 0) wakeWriter();
    }

    /// <summary>A command was queued: wakes the writer, or leaves that to the last <see cref="Release"/>.</summary>
    public void WakeUnlessHeld()
    {
        if (Volatile.Read(ref _holds) > 0)
        {
            Interlocked.Exchange(ref _deferred, 1);
            // A release between the check above and the flag may have missed it: then this thread wakes the writer.
            if (Volatile.Read(ref _holds) > 0 || Interlocked.Exchange(ref _deferred, 0) == 0) return;
        }
        wakeWriter();
    }
}
