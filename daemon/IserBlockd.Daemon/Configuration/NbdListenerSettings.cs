using System.Globalization;
using IserBlockd.BlockDev.Nbd;

namespace IserBlockd.Daemon.Configuration;

/// <summary>
/// What a mapping asks of the NBD server behind its socket or address: TLS (as qemu-nbd's <c>--tls-creds</c>) and
/// the handshake and send timeouts. Mappings that share a socket or address share one server, so they must agree.
/// </summary>
/// <param name="Tls">off, allow (TLS offered, plain clients served) or require.</param>
/// <param name="TlsCreds">qemu's layout: ca-cert.pem, server-cert.pem, server-key.pem; null with TLS off.</param>
/// <param name="TlsVerifyPeer">Clients must present a certificate signed by the CA in <paramref name="TlsCreds"/>.</param>
public sealed record NbdListenerSettings(string Tls, string? TlsCreds, bool TlsVerifyPeer, TimeSpan HandshakeTimeout, TimeSpan SendTimeout)
{
    public const string Off = "off", Allow = "allow", Require = "require";
    public const string ExpectedTls = "\"off\", \"allow\" or \"require\"";

    public static NbdListenerSettings Default { get; } = new(Off, null, false, new NbdServerOptions().HandshakeTimeout, new NbdServerOptions().SendTimeout);

    public bool TlsRequired => Tls == Require;

    /// <summary>Reads the certificates (again: they may have been renewed since the configuration was checked).</summary>
    public NbdTlsOptions? LoadTls() => Tls == Off ? null : NbdTlsOptions.Load(TlsCreds!, TlsRequired, TlsVerifyPeer);

    /// <summary>The server options for a socket or address of these settings.</summary>
    public NbdServerOptions Apply(NbdServerOptions options) =>
        options with { Tls = LoadTls(), HandshakeTimeout = HandshakeTimeout, SendTimeout = SendTimeout };

    /// <summary>
    /// The TLS settings as qemu-nbd reads its options: credentials mean TLS is required unless the mode says allow;
    /// off with credentials ignores them. Problems come back as (field, message), the field being one of
    /// "tls", "tlsCreds", "tlsVerifyPeer"; the credentials are loaded once to check them.
    /// </summary>
    public static (string Mode, string? Creds) ResolveTls(string? mode, string? creds, bool verifyPeer, List<(string Field, string Message)> problems)
    {
        mode ??= creds == null ? Off : Require;
        if (mode is not (Off or Allow or Require))
        {
            problems.Add(("tls", $"expected {ExpectedTls}, got \"{mode}\""));
            return (Off, null);
        }
        if (mode == Off)
        {
            if (verifyPeer) problems.Add(("tlsVerifyPeer", "needs TLS (tls credentials, and tls allow or require)"));
            return (Off, null);
        }
        if (creds == null)
        {
            problems.Add(("tls", $"{mode} needs the TLS credentials directory (ca-cert.pem, server-cert.pem, server-key.pem)"));
            return (Off, null);
        }
        try
        {
            var full = Path.GetFullPath(creds);
            NbdTlsOptions.Load(full, mode == Require, verifyPeer);
            return (mode, full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException
                                       or System.Security.Cryptography.CryptographicException)
        {
            problems.Add(("tlsCreds", e.Message));
            return (Off, null);
        }
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"tls {Tls}{(TlsCreds != null ? " " + TlsCreds : "")}{(TlsVerifyPeer ? " verify-peer" : "")}, handshake timeout {HandshakeTimeout.TotalSeconds} s, send timeout {SendTimeout.TotalSeconds} s");
}
