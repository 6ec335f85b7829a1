using IserBlockd.Daemon.Configuration.Document;

namespace IserBlockd.Daemon.Configuration;

/// <summary>
/// The <c>nbd</c> object of a LUN mapping: its Unix socket and TCP address, its export name (unique per socket or
/// address), and the server settings (TLS, timeouts, connection limit) that every mapping on one socket or address
/// must agree on, since they share one server.
/// </summary>
internal sealed class NbdMappingValidator(ConfigChecks checks)
{
    private const int MaxNbdConnections = 1024;

    /// <summary>Sockets and addresses seen so far, with the mapping that first named each and its server settings.</summary>
    private readonly Dictionary<string, (string Path, NbdListenerSettings Settings)> _listeners = new(StringComparer.Ordinal);

    /// <summary>Checks <paramref name="nbd"/> of the mapping at <paramref name="path"/>; <paramref name="exports"/> holds
    /// the exports named so far (socket or address and name, with the mapping that named it).</summary>
    public (string? Socket, HostPort? Listen, string ExportName, NbdListenerSettings Listener, int MaxConnections) Check(
        NbdExportDocument nbd, string path, string exportName, Dictionary<string, string> exports)
    {
        string? socket = null;
        HostPort? listen = null;
        if (nbd.Socket != null)
        {
            if (!ConfigChecks.IsAbsolutePath(nbd.Socket)) checks.Error(path + ".nbd.socket", $"expected an absolute path, got \"{nbd.Socket}\"");
            else if (System.Text.Encoding.UTF8.GetByteCount(nbd.Socket) > ConfigChecks.MaxUnixSocketPath) checks.Error(path + ".nbd.socket", $"longer than {ConfigChecks.MaxUnixSocketPath} bytes, the limit for a Unix socket path");
            else socket = nbd.Socket;
        }
        if (nbd.Listen != null)
        {
            if (HostPort.TryParse(nbd.Listen, HostPort.NbdPort, out var address, out var why)) listen = address;
            else checks.Error(path + ".nbd.listen", why);
        }
        if (nbd.Socket == null && nbd.Listen == null)
            checks.Error(path + ".nbd", "give \"socket\" (a Unix socket path) and/or \"listen\" (\"ADDRESS:PORT\")");
        if (nbd.ExportName != null)
        {
            if (nbd.ExportName.Length > 4096) checks.Error(path + ".nbd.exportName", "longer than 4096 bytes (the NBD limit)");
            else exportName = nbd.ExportName;
        }
        var (listener, maxConnections) = Serving(nbd, path + ".nbd");
        foreach (var key in new[] { socket, listen?.ToString() })
        {
            if (key == null) continue;
            if (!_listeners.TryAdd(key, (path, listener)) && _listeners[key] is var (first, settings) && settings != listener)
                checks.Error(path + ".nbd", $"{key} is shared with {first}, whose server settings differ ({settings}); mappings on one socket or address share one server and must agree on tls, tlsCreds, tlsVerifyPeer, handshakeTimeout and sendTimeout");
        }
        // Several LUNs may share one socket or address as long as their export names differ.
        if (socket != null && !exports.TryAdd($"unix:{socket}/{exportName}", path))
            checks.Error(path + ".nbd.exportName", $"export \"{exportName}\" on {socket} is already used by {exports[$"unix:{socket}/{exportName}"]}");
        if (listen is { } l && !exports.TryAdd($"tcp:{l}/{exportName}", path))
            checks.Error(path + ".nbd.exportName", $"export \"{exportName}\" on {l} is already used by {exports[$"tcp:{l}/{exportName}"]}");
        return (socket, listen, exportName, listener, maxConnections);
    }

    /// <summary>The NBD server settings of a mapping (TLS, timeouts) and its export's connection limit.</summary>
    private (NbdListenerSettings, int) Serving(NbdExportDocument nbd, string path)
    {
        var maxConnections = BlockDev.Nbd.NbdExport.DefaultMaxConnections;
        if (nbd.MaxConnections is { } max)
        {
            if (max is < 1 or > MaxNbdConnections) checks.Error(path + ".maxConnections", $"expected 1 to {MaxNbdConnections}, got {max}");
            else maxConnections = max;
        }
        var defaults = NbdListenerSettings.Default;
        var handshake = checks.Seconds(nbd.HandshakeTimeout, path + ".handshakeTimeout", defaults.HandshakeTimeout, min: 1);
        var send = checks.Seconds(nbd.SendTimeout, path + ".sendTimeout", defaults.SendTimeout, min: 1);
        if (nbd.TlsCreds != null && !ConfigChecks.IsAbsolutePath(nbd.TlsCreds))
        {
            checks.Error(path + ".tlsCreds", $"expected an absolute path (a directory with ca-cert.pem, server-cert.pem, server-key.pem), got \"{nbd.TlsCreds}\"");
            return (defaults, maxConnections);
        }
        var problems = new List<(string Field, string Message)>();
        var verifyPeer = nbd.TlsVerifyPeer ?? false;
        var (mode, creds) = NbdListenerSettings.ResolveTls(nbd.Tls, nbd.TlsCreds, verifyPeer, problems);
        foreach (var (field, message) in problems) checks.Error($"{path}.{field}", message);
        return (new NbdListenerSettings(mode, creds, verifyPeer && mode != NbdListenerSettings.Off, handshake, send), maxConnections);
    }
}
