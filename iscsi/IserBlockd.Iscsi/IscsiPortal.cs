using System.Globalization;
using System.Net;

namespace IserBlockd.Iscsi;

/// <summary>
/// A network portal: host (IPv4 literal, IPv6 literal or DNS name), TCP port and, when known, the target portal
/// group tag. Text form follows RFC 7143 TargetAddress: <c>host[:port][,tpgt]</c>, IPv6 literals in brackets.
/// </summary>
public sealed record IscsiPortal(string Host, int Port = IscsiPortal.DefaultPort, int? PortalGroupTag = null)
{
    public const int DefaultPort = 3260;

    /// <summary>Parses <c>host</c>, <c>host:port</c>, <c>[v6]</c>, <c>[v6]:port</c>, each optionally followed by <c>,tpgt</c>.</summary>
    public static IscsiPortal Parse(string text)
    {
        if (!TryParse(text, out var portal, out var error))
            throw new FormatException($"'{text}' is not a portal (host[:port][,tpgt]): {error}");
        return portal;
    }

    public static bool TryParse(string? text, out IscsiPortal portal, out string error)
    {
        portal = null!;
        error = "";
        if (string.IsNullOrWhiteSpace(text)) { error = "empty"; return false; }
        text = text.Trim();
        int? tpgt = null;
        var comma = text.LastIndexOf(',');
        if (comma >= 0)
        {
            if (!int.TryParse(text.AsSpan(comma + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var tag) || tag > 65535)
            { error = "portal group tag is not a number 0-65535"; return false; }
            tpgt = tag;
            text = text[..comma];
        }

        string host;
        var port = DefaultPort;
        string? portText = null;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']');
            if (close < 0) { error = "missing ']' after IPv6 address"; return false; }
            host = text[1..close];
            var rest = text[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':') { error = "unexpected text after ']'"; return false; }
                portText = rest[1..];
            }
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            { error = $"'{host}' is not an IPv6 address"; return false; }
        }
        else
        {
            var colon = text.IndexOf(':');
            if (colon >= 0 && text.IndexOf(':', colon + 1) >= 0)
            {
                // A bare IPv6 literal without brackets: accepted without a port, as iscsiadm does.
                host = text;
                if (!IPAddress.TryParse(host, out _)) { error = $"'{host}' is not an address"; return false; }
            }
            else if (colon >= 0)
            {
                host = text[..colon];
                portText = text[(colon + 1)..];
            }
            else host = text;
        }
        if (host.Length == 0) { error = "empty host"; return false; }
        if (portText != null && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        { error = $"port '{portText}' is not a number 1-65535"; return false; }
        portal = new IscsiPortal(host, port, tpgt);
        return true;
    }

    public bool IsIPv6Literal => Host.Contains(':');

    /// <summary><c>host:port</c> with IPv6 literals bracketed (no portal group tag).</summary>
    public string Address => IsIPv6Literal ? $"[{Host}]:{Port}" : $"{Host}:{Port}";

    /// <summary>RFC 7143 TargetAddress form: <c>host:port,tpgt</c>.</summary>
    public override string ToString() => PortalGroupTag is int tag ? $"{Address},{tag}" : Address;
}
