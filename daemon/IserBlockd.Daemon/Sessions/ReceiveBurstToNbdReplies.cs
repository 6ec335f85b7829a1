using IserBlockd.BlockDev;
using IserBlockd.Iscsi.Sessions;

namespace IserBlockd.Daemon.Sessions;

/// <summary>The responses one iSCSI receive brought complete as one <see cref="CompletionBurst"/>, so that the NBD
/// replies they finish leave in one send per connection.</summary>
internal sealed class ReceiveBurstToNbdReplies : IReceiveBurstObserver
{
    public static readonly ReceiveBurstToNbdReplies Instance = new();

    public void BurstStarted() => CompletionBurst.Begin();

    public void BurstEnded() => CompletionBurst.End();
}
