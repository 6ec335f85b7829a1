namespace IserBlockd.Daemon.Control;

/// <summary>What the control socket can ask of the running daemon. The session supervisor implements it.</summary>
public interface IDaemonControl
{
    List<SessionInfo> List();

    StatusInfo Status();

    /// <summary>One node (or every node, with null) in detail: negotiated keys, command window, per-kind LUN figures.</summary>
    ControlSocketResponse Show(string? node);

    /// <summary>Logs in to a configured node (and brings up its configured mappings).</summary>
    Task<ControlSocketResponse> LoginAsync(string node, CancellationToken cancellationToken);

    /// <summary>Flushes and unmaps the node's LUNs, then logs out.</summary>
    Task<ControlSocketResponse> LogoutAsync(string node, CancellationToken cancellationToken);

    Task<ControlSocketResponse> MapAsync(MapRequest request, CancellationToken cancellationToken);

    Task<ControlSocketResponse> UnmapAsync(string node, int lun, CancellationToken cancellationToken);

    /// <summary>The LUNs the node's target reports now (REPORT LUNS, INQUIRY, READ CAPACITY) and which are mapped.</summary>
    Task<ControlSocketResponse> LunsAsync(string node, CancellationToken cancellationToken);

    /// <summary>Reads the size of the node's mapped LUNs (or of one) again and applies a change; unmaps LUNs the target no longer has.</summary>
    Task<ControlSocketResponse> RescanAsync(string node, int? lun, CancellationToken cancellationToken);

    /// <summary>Reads and validates the configuration file again and applies the difference (nothing when it is broken).</summary>
    Task<ControlSocketResponse> ReloadAsync(CancellationToken cancellationToken);
}
