namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// Holding the writer while a caller issues several commands in a row, so that they leave in one send (one
/// system call, one TCP segment train) instead of one send each: the writer otherwise runs inline on the thread of
/// every command and sends it at once.
/// </summary>
public sealed partial class IscsiSession
{
    private int _sendHolds;
    private int _sendDeferred;

    /// <summary>
    /// The caller is about to issue several commands together (an NBD server starting the requests one receive
    /// brought): they wait in the queue until the matching <see cref="ReleaseSends"/>. Holds nest; a hold must never
    /// span a wait (release before awaiting anything), so that a held command waits only for the caller's own
    /// synchronous work. A single command issued and released at once leaves as soon as without a hold.
    /// </summary>
    public void HoldSends() => Interlocked.Increment(ref _sendHolds);

    /// <summary>Ends a <see cref="HoldSends"/>; the last one sends what the holds kept back, on this thread.</summary>
    public void ReleaseSends()
    {
        if (Interlocked.Decrement(ref _sendHolds) == 0 && Interlocked.Exchange(ref _sendDeferred, 0) != 0)
            CurrentConnection()?.SignalWriter();
    }

    /// <summary>A command was queued: wakes the writer, or leaves that to the last <see cref="ReleaseSends"/>.</summary>
    private void SignalWriterUnlessHeld()
    {
        if (Volatile.Read(ref _sendHolds) > 0)
        {
            Interlocked.Exchange(ref _sendDeferred, 1);
            // A release between the check above and the flag may have missed it: then this thread signals.
            if (Volatile.Read(ref _sendHolds) > 0 || Interlocked.Exchange(ref _sendDeferred, 0) == 0) return;
        }
        CurrentConnection()?.SignalWriter();
    }
}
