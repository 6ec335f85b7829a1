using System.Globalization;
using System.Net;

namespace IserBlockd.Daemon.Configuration;

/// <summary>A host (name, IPv4 literal or IPv6 literal) and a TCP port, written <c>host:port</c> or
/// <c>[v6]:port</c>; the port may be left out where there is a well-known default.</summary>
public readonly record struct HostPort(string Host, int Port)
{
    public const int IscsiPort = 3260;
    public const int NbdPort = 10809;
    /// <summary>The metrics endpoint's default port (beside node_exporter's 9100 range, unassigned in Prometheus's list).</summary>
    public const int MetricsPort = 9809;

    public bool IsIPv6Literal => Host.Contains(':');

    /// <summary>localhost or a loopback address: reachable from this machine only.</summary>
    public bool IsLoopback =>
        Host == "localhost" || (System.Net.IPAddress.TryParse(Host.Trim('[', ']'), out var address) && System.Net.IPAddress.IsLoopback(address));

    public override string ToString() =>
        IsIPv6Literal ? $"[{Host}]:{Port.ToString(CultureInfo.InvariantCulture)}" : $"{Host}:{Port.ToString(CultureInfo.InvariantCulture)}";

    public static HostPort Parse(string text, int defaultPort) =>
        TryParse(text, defaultPort, out var value, out var error) ? value : throw new FormatException(error);

    /// <param name="anyPort">A listening address: port 0 is allowed and means a free port the system picks (the
    /// caller reports the port it got).</param>
    public static bool TryParse(string text, int defaultPort, out HostPort value, out string error, bool anyPort = false)
    {
        value = default;
        text = text.Trim();
        string host;
        string? port = null;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']');
            if (close < 0) { error = $"\"{text}\": missing ']' after the IPv6 address"; return false; }
            host = text[1..close];
            var rest = text[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':') { error = $"\"{text}\": expected ':PORT' after ']'"; return false; }
                port = rest[1..];
            }
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                error = $"\"{text}\": \"{host}\" is not an IPv6 address";
                return false;
            }
        }
        else
        {
            var colons = text.Count(c => c == ':');
            if (colons > 1) { error = $"\"{text}\": write IPv6 addresses in brackets, as [ADDRESS]:PORT"; return false; }
            var colon = text.IndexOf(':');
            host = colon < 0 ? text : text[..colon];
            if (colon >= 0) port = text[(colon + 1)..];
            if (host.Length == 0) { error = $"\"{text}\": missing host"; return false; }
            if (!IsHostName(host)) { error = $"\"{text}\": \"{host}\" is neither an IP address nor a host name"; return false; }
        }

        var number = defaultPort;
        var lowest = anyPort ? 0 : 1;
        if (port != null && (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out number) || number < lowest || number > 65535))
        {
            error = $"\"{text}\": the port must be a number from {lowest} to 65535";
            return false;
        }
        if (port == null && defaultPort == 0)
        {
            error = $"\"{text}\": missing ':PORT'";
            return false;
        }
        value = new HostPort(host, number);
        error = "";
        return true;
    }

    private static bool IsHostName(string host) =>
        host.Length <= 253 && host.Split('.').All(label =>
            label.Length is > 0 and <= 63 && label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-') && label[0] != '-' && label[^1] != '-');
}
