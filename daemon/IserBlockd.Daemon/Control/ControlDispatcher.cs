using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Configuration.Document;

namespace IserBlockd.Daemon.Control;

/// <summary>Checks a control request and hands it to the daemon.</summary>
public static class ControlDispatcher
{
    public const string Commands = "list, status, show, luns, rescan, login, logout, map, unmap, reload";

    public static async Task<ControlSocketResponse> DispatchAsync(ControlSocketRequest request, IDaemonControl control, CancellationToken cancellationToken)
    {
        switch (request.Command)
        {
            case "list":
                return new ControlSocketResponse { Ok = true, Sessions = control.List() };
            case "status":
                return new ControlSocketResponse { Ok = true, Status = control.Status() };
            case "login":
                return request.Node is { Length: > 0 } loginNode
                    ? await control.LoginAsync(loginNode, cancellationToken).ConfigureAwait(false)
                    : Missing("login", "node");
            case "logout":
                return request.Node is { Length: > 0 } logoutNode
                    ? await control.LogoutAsync(logoutNode, cancellationToken).ConfigureAwait(false)
                    : Missing("logout", "node");
            case "map":
                if (request.Node is not { Length: > 0 } mapNode) return Missing("map", "node");
                if (request.Lun is null) return Missing("map", "lun");
                var errors = new List<ConfigError>();
                var mapping = ConfigValidator.ValidateLun(new LunDocument
                {
                    Lun = request.Lun,
                    Device = request.Device,
                    Nbd = request.Socket != null || request.Listen != null || request.ExportName != null
                        ? new NbdExportDocument { Socket = request.Socket, Listen = request.Listen, ExportName = request.ExportName }
                        : null,
                    ReadOnly = request.ReadOnly,
                }, mapNode, errors);
                if (mapping == null)
                    return ControlSocketResponse.Failure(ControlErrorCodes.BadRequest, string.Join("; ", errors));
                return await control.MapAsync(new MapRequest(mapNode, mapping), cancellationToken).ConfigureAwait(false);
            case "unmap":
                if (request.Node is not { Length: > 0 } unmapNode) return Missing("unmap", "node");
                if (request.Lun is not { } unmapLun) return Missing("unmap", "lun");
                return await control.UnmapAsync(unmapNode, unmapLun, cancellationToken).ConfigureAwait(false);
            case "show":
                return control.Show(request.Node is { Length: > 0 } showNode ? showNode : null);
            case "luns":
                return request.Node is { Length: > 0 } lunsNode
                    ? await control.LunsAsync(lunsNode, cancellationToken).ConfigureAwait(false)
                    : Missing("luns", "node");
            case "rescan":
                return request.Node is { Length: > 0 } rescanNode
                    ? await control.RescanAsync(rescanNode, request.Lun, cancellationToken).ConfigureAwait(false)
                    : Missing("rescan", "node");
            case "reload":
                return await control.ReloadAsync(cancellationToken).ConfigureAwait(false);
            case null:
                return ControlSocketResponse.Failure(ControlErrorCodes.BadRequest, $"no command; known commands: {Commands}");
            default:
                return ControlSocketResponse.Failure(ControlErrorCodes.BadRequest, $"unknown command \"{request.Command}\"; known commands: {Commands}");
        }
    }

    private static ControlSocketResponse Missing(string command, string field) =>
        ControlSocketResponse.Failure(ControlErrorCodes.BadRequest, $"{command} needs a {field}");
}
