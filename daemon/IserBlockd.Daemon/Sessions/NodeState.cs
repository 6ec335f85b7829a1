namespace IserBlockd.Daemon.Sessions;

/// <summary>Where a node's session stands, as <c>iserblockctl list</c> shows it.</summary>
public enum NodeState
{
    LoggedOut,
    LoggingIn,
    LoggedIn,
    /// <summary>The connection was lost; I/O is held while the session is reinstated.</summary>
    Recovering,
    /// <summary>Still reconnecting, but the replacement timeout has passed: I/O fails with EIO meanwhile.</summary>
    Failed,
    LoggingOut,
}

public static class NodeStateNames
{
    public static string ToDisplayString(this NodeState state) => state switch
    {
        NodeState.LoggedOut => "logged-out",
        NodeState.LoggingIn => "logging-in",
        NodeState.LoggedIn => "logged-in",
        NodeState.Recovering => "reconnecting",
        NodeState.Failed => "failed",
        _ => "logging-out",
    };
}
