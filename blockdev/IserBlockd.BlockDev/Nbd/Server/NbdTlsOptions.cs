using System.Security.Cryptography.X509Certificates;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// NBD over TLS (NBD_OPT_STARTTLS with X.509), as qemu-nbd's <c>--tls-creds</c> and nbdkit's <c>--tls</c>.
/// </summary>
/// <param name="Certificate">The server's certificate, with its private key.</param>
/// <param name="Authority">The CA whose signature a client certificate needs (qemu's ca-cert.pem).</param>
/// <param name="Required">Clients must start TLS before anything else (qemu's and nbdkit's
/// <c>require</c>); otherwise TLS is offered and plain clients are served too (<c>allow</c>).</param>
/// <param name="VerifyPeer">Clients must present a certificate signed by <paramref name="Authority"/>:
/// access control by certificate.</param>
public sealed record NbdTlsOptions(X509Certificate2 Certificate, X509Certificate2Collection Authority, bool Required, bool VerifyPeer)
{
    /// <summary>Loads qemu's layout from <paramref name="directory"/>: ca-cert.pem, server-cert.pem,
    /// server-key.pem (PEM, the key unencrypted).</summary>
    public static NbdTlsOptions Load(string directory, bool required, bool verifyPeer)
    {
        var certificate = Path.Combine(directory, "server-cert.pem");
        var key = Path.Combine(directory, "server-key.pem");
        var ca = Path.Combine(directory, "ca-cert.pem");
        foreach (var file in new[] { certificate, key, ca })
            if (!File.Exists(file)) throw new FileNotFoundException($"TLS credentials: {file} does not exist", file);
        var authority = new X509Certificate2Collection();
        authority.ImportFromPemFile(ca);
        if (authority.Count == 0) throw new InvalidDataException($"TLS credentials: {ca} holds no certificate");
        var server = X509Certificate2.CreateFromPemFile(certificate, key);
        return new NbdTlsOptions(server, authority, required, verifyPeer);
    }
}
