namespace IserBlockd.Daemon.Control;

/// <summary>What the control socket can ask of the running daemon. The session supervisor implements it.</summary>
public interface IDaemonControl
{
    List<SessionInfo> List();

    StatusInfo Status();

    /// <summary>One node (or every node, with null) in detail: negotiated keys, command window, per-kind LUN figures.</summary>
    ControlResponse Show(string? node);

    /// <summary>Logs in to a configured node (and brings up its configured mappings).</summary>
    Task<ControlResponse> LoginAsync(string node, CancellationToken cancellationToken);

    /// <summary>Flushes and unmaps the node's LUNs, then logs out.</summary>
    Task<ControlResponse> LogoutAsync(string node, CancellationToken cancellationToken);

    Task<ControlResponse> MapAsync(MapRequest request, CancellationToken cancellationToken);

    Task<ControlResponse> UnmapAsync(string node, int lun, CancellationToken cancellationToken);

    /// <summary>The LUNs the node's target reports now (REPORT LUNS, INQUIRY, READ CAPACITY) and which are mapped.</summary>
    Task<ControlResponse> LunsAsync(string node, CancellationToken cancellationToken);

    /// <summary>Reads the size of the node's mapped LUNs (or of one) again and applies a change; unmaps LUNs the target no longer has.</summary>
    Task<ControlResponse> RescanAsync(string node, int? lun, CancellationToken cancellationToken);

    /// <summary>Reads and validates the configuration file again and applies the difference (nothing when it is broken).</summary>
    Task<ControlResponse> ReloadAsync(CancellationToken cancellationToken);
}
