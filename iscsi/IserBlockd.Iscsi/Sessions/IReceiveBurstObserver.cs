namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// Told when the receive loop starts handling PDUs that one receive brought together and when it has handled the
/// last of them (the next PDU needs a wait for the network). Commands completed in between complete on the loop's
/// thread, one after another; a consumer can hold back what it sends for them until the burst ends, so that their
/// answers leave together. A burst never spans a wait: it begins and ends on the same thread.
/// </summary>
public interface IReceiveBurstObserver
{
    void BurstStarted();

    void BurstEnded();
}
